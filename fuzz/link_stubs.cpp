// What the readers reference but the fuzz harnesses never reach. read_cimatrix opens its
// model through hf::open_model_file, which would pull in the whole converter; the harnesses
// call parse_cimatrix with the model already open (or none), so that path is never taken.
#include "imq/error.h"
#include "imq/hf.h"

namespace imq::hf {

gguf::File open_model_file(const std::string& path, const gguf::OpenOptions&) {
  throw_error("{}: opening a model is not part of the fuzz build", path);
}

}  // namespace imq::hf
