/* ONNX loader: being written. */
#include "onnx_import.h"
