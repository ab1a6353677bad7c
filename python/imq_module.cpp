// The Python binding (pybind11): `import imq; r = imq.Runner(model=..., in_situ_quant="Q4K",
// calibration_file=...)`, r.generate(...), r.save_gguf(...), the imatrix as NumPy arrays.
// A thin layer over imq/insitu.h; errors arrive as RuntimeError with imq's one-line message.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "imq/error.h"
#include "imq/insitu.h"

namespace py = pybind11;

namespace {

class PyRunner {
 public:
  PyRunner(const std::string& model, const std::string& in_situ_quant,
           const std::optional<std::string>& calibration_file, int64_t calibration_ctx,
           int64_t calibration_chunks, const std::string& search, int threads, bool verbose) {
    imq::insitu::Options o;
    o.isq = in_situ_quant;
    o.calibration_file = calibration_file.value_or("");
    o.calibration_ctx = calibration_ctx;
    o.calibration_chunks = calibration_chunks;
    o.search = imq::quantize::parse_search(search);
    o.n_threads = threads;
    if (verbose) o.log = [](const std::string& s) { py::print("imq:", s); };
    py::gil_scoped_release release;
    runner_ = imq::insitu::Runner::build(model, o);
  }

  std::string generate(const std::string& prompt, int64_t max_tokens, float temperature, int top_k,
                       float top_p, uint64_t seed) {
    imq::eval::SamplingOptions s;
    s.temp = temperature;
    s.top_k = top_k;
    s.top_p = top_p;
    s.seed = seed;
    py::gil_scoped_release release;
    return runner_->generate(prompt, max_tokens, s);
  }

  void save_gguf(const std::string& path) {
    py::gil_scoped_release release;
    runner_->save_gguf(path);
  }

  void save_imatrix(const std::string& path, const std::string& format) {
    runner_->save_imatrix(path, imq::imatrix::parse_format(format));
  }

  // {weight name: {"sums": float32[slots, ne0], "counts": float32[slots]}}; None without one.
  py::object imatrix() const {
    const imq::imatrix::Imatrix* m = runner_->imatrix();
    if (!m) return py::none();
    py::dict out;
    for (const auto& [name, e] : m->entries) {
      const auto slots = py::ssize_t(e.counts.size());
      const auto ne0 = slots ? py::ssize_t(e.sums.size()) / slots : 0;
      py::array_t<float> sums({slots, ne0});
      std::copy(e.sums.begin(), e.sums.end(), sums.mutable_data());
      py::array_t<float> counts(slots);
      std::copy(e.counts.begin(), e.counts.end(), counts.mutable_data());
      py::dict entry;
      entry["sums"] = sums;
      entry["counts"] = counts;
      out[py::str(name)] = entry;
    }
    return out;
  }

  std::vector<std::pair<std::string, std::string>> tensor_types() const {
    std::vector<std::pair<std::string, std::string>> v;
    for (const auto& tp : runner_->plan().tensors)
      v.emplace_back(tp.name, imq::ggml_type_display_name(tp.dst_type));
    return v;
  }

 private:
  std::unique_ptr<imq::insitu::Runner> runner_;
};

}  // namespace

PYBIND11_MODULE(imq, m) {
  m.doc() = "imq: importance-matrix quantization (in-situ runner)";
  py::register_exception<imq::Error>(m, "Error", PyExc_RuntimeError);
  py::class_<PyRunner>(m, "Runner")
      .def(py::init<const std::string&, const std::string&, const std::optional<std::string>&, int64_t,
                    int64_t, const std::string&, int, bool>(),
           py::arg("model"), py::arg("in_situ_quant") = "Q4K", py::arg("calibration_file") = py::none(),
           py::arg("calibration_ctx") = 512, py::arg("calibration_chunks") = -1,
           py::arg("search") = "reference", py::arg("threads") = 0, py::arg("verbose") = false,
           "Load MODEL (GGUF), collect the imatrix from calibration_file in memory, quantize in memory.")
      .def("generate", &PyRunner::generate, py::arg("prompt"), py::arg("max_tokens") = 128,
           py::arg("temperature") = 0.8f, py::arg("top_k") = 40, py::arg("top_p") = 0.95f,
           py::arg("seed") = 0, "Continue PROMPT; returns the generated text.")
      .def("save_gguf", &PyRunner::save_gguf, py::arg("path"),
           "Write the quantized model (what imq quantize writes from the same inputs).")
      .def("save_imatrix", &PyRunner::save_imatrix, py::arg("path"), py::arg("format") = "gguf",
           "Write the importance matrix (gguf or dat).")
      .def_property_readonly("imatrix", &PyRunner::imatrix,
                             "{name: {'sums': float32[slots, ne0], 'counts': float32[slots]}} or None")
      .def_property_readonly("tensor_types", &PyRunner::tensor_types, "[(tensor name, type)] as quantized");
}
