/* Pass pipelines: placeholder until the passes issue lands. */
#include "ir.h"
