/* LLVM backend: placeholder until the backend issue lands. */
#include "ir.h"
