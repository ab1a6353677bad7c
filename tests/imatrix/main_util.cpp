// run_imq for this test executable.
#include "test_util_impl.h"
