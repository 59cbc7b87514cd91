/* runtime core: being written. */
#include "rt.h"
