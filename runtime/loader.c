/* Loader: placeholder. */
#include "kiln.h"
