#include <gtest/gtest.h>
#include "test_util_impl.h"
