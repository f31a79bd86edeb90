// libtorch-cpp runner: loads a TorchScript artifact (.pt, torch::jit::load) or an AOTInductor package
// (.pt2, torch::inductor::AOTIModelPackageLoader) and times it from C++.
//
// Usage:
//   runner MODEL.pt|MODEL.pt2 --input x.bin --shape 8,3,224,224 [--output y.bin]
//          [--threads N] [--warmup 3] [--min-iters 10] [--min-time-ms 0]
//          [--max-iters 100000] [--chunk N] [--qengine x86|fbgemm] [--call-batch N]
//
// --call-batch N: the model takes exactly N rows per call (a .pt2 compiled for a fixed batch); a larger
// input is run as that many calls, the last one padded with its final row, and the padding dropped.
//
// The input file is raw little-endian float32 in NCHW order. After warm-up it
// runs timed iterations until both --min-iters and --min-time-ms are met (or
// --max-iters); with --chunk N it instead runs every row once in slices of N
// (evaluation); it writes the output of the last run as raw float32 to --output,
// and prints ONE JSON object on stdout:
//   {"times_ms": [...], "threads": n, "qengine": "fbgemm",
//    "torch_version": "...", "output_shape": [...]}
// Errors go to stderr with exit status 1 (2 for bad command-line arguments).

#include <torch/script.h>
#include <torch/version.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Args {
  std::string model;
  std::string input;
  std::string output;
  std::vector<int64_t> shape;
  int threads = 0;  // 0: keep libtorch's default
  int warmup = 3;
  long min_iters = 10;
  long max_iters = 100000;
  double min_time_ms = 0.0;
  int64_t chunk = 0;
  std::string qengine = "x86";  // >0: evaluation mode, one pass over the input in slices of this many rows
  int64_t call_batch = 0;  // >0: rows per model call (see --call-batch)
};

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::vector<int64_t> parse_shape(const std::string& text) {
  std::vector<int64_t> dims;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) throw UsageError("empty dimension in --shape " + text);
    size_t used = 0;
    long long v = std::stoll(item, &used);
    if (used != item.size() || v <= 0) throw UsageError("bad dimension '" + item + "' in --shape");
    dims.push_back(v);
  }
  if (dims.empty()) throw UsageError("--shape is empty");
  return dims;
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string key = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError("missing value for " + key);
      return argv[++i];
    };
    try {
      if (key == "--input") a.input = value();
      else if (key == "--output") a.output = value();
      else if (key == "--shape") a.shape = parse_shape(value());
      else if (key == "--threads") a.threads = std::stoi(value());
      else if (key == "--warmup") a.warmup = std::stoi(value());
      else if (key == "--min-iters") a.min_iters = std::stol(value());
      else if (key == "--max-iters") a.max_iters = std::stol(value());
      else if (key == "--min-time-ms") a.min_time_ms = std::stod(value());
      else if (key == "--chunk") a.chunk = std::stol(value());
      else if (key == "--qengine") a.qengine = value();
      else if (key == "--call-batch") a.call_batch = std::stol(value());
      else if (!key.empty() && key[0] == '-') throw UsageError("unknown option " + key);
      else if (a.model.empty()) a.model = key;
      else throw UsageError("unexpected argument " + key);
    } catch (const std::logic_error&) {  // std::invalid_argument / out_of_range from sto*
      throw UsageError("bad value for " + key);
    }
  }
  if (a.model.empty() || a.input.empty() || a.shape.empty())
    throw UsageError("need MODEL.pt, --input and --shape");
  if (a.min_iters < 1 || a.max_iters < a.min_iters || a.warmup < 0 || a.threads < 0 || a.call_batch < 0)
    throw UsageError("need --min-iters >= 1, --max-iters >= --min-iters, --warmup >= 0, --threads >= 0, "
                     "--call-batch >= 0");
  return a;
}

torch::Tensor read_input(const std::string& path, const std::vector<int64_t>& shape) {
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot open input " + path);
  const auto size = static_cast<int64_t>(in.tellg());
  if (size != numel * static_cast<int64_t>(sizeof(float)))
    throw std::runtime_error("input " + path + " has " + std::to_string(size) + " bytes; shape needs " +
                             std::to_string(numel * sizeof(float)));
  in.seekg(0);
  auto tensor = torch::empty(shape, torch::kFloat32);
  in.read(reinterpret_cast<char*>(tensor.data_ptr<float>()), size);
  if (!in) throw std::runtime_error("short read from " + path);
  return tensor;
}

void write_output(const std::string& path, const torch::Tensor& out) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw std::runtime_error("cannot write output " + path);
  f.write(reinterpret_cast<const char*>(out.data_ptr<float>()), out.numel() * sizeof(float));
  if (!f) throw std::runtime_error("short write to " + path);
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// One loaded artifact of either format, called on a batch.
class Model {
 public:
  Model(const std::string& path, int64_t call_batch) : call_batch_(call_batch) {
    if (ends_with(path, ".pt2")) {
      package_ = std::make_unique<torch::inductor::AOTIModelPackageLoader>(path);
    } else {
      script_ = torch::jit::load(path, torch::kCPU);
      script_->eval();
    }
  }

  torch::Tensor operator()(const torch::Tensor& x) {
    const int64_t n = x.size(0);
    if (call_batch_ == 0 || n == call_batch_) return call(x);
    std::vector<torch::Tensor> parts;
    for (int64_t i = 0; i < n; i += call_batch_) {
      torch::Tensor chunk = x.slice(0, i, std::min<int64_t>(i + call_batch_, n));
      const int64_t pad = call_batch_ - chunk.size(0);
      if (pad > 0) chunk = torch::cat({chunk, chunk.slice(0, -1).expand({pad, x.size(1), x.size(2), x.size(3)})}, 0);
      parts.push_back(call(chunk.contiguous()));
    }
    return torch::cat(parts, 0).slice(0, 0, n);
  }

 private:
  torch::Tensor call(const torch::Tensor& x) {
    if (package_) {
      std::vector<at::Tensor> out = package_->run({x});
      if (out.size() != 1) throw std::runtime_error("package output is not a single tensor");
      return out[0];
    }
    torch::IValue result = script_->forward({x});
    if (!result.isTensor()) throw std::runtime_error("model output is not a single tensor");
    return result.toTensor();
  }

  int64_t call_batch_;
  std::optional<torch::jit::script::Module> script_;
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> package_;
};

int run(const Args& a) {
  // Quantized weights are repacked for the engine active when the module loads: set it first.
  if (a.qengine == "x86") at::globalContext().setQEngine(at::QEngine::X86);
  else if (a.qengine == "fbgemm") at::globalContext().setQEngine(at::QEngine::FBGEMM);
  else throw UsageError("--qengine must be x86 or fbgemm, got " + a.qengine);
  if (a.threads > 0) at::set_num_threads(a.threads);
  c10::InferenceMode guard;

  Model module(a.model, a.call_batch);
  const torch::Tensor x = read_input(a.input, a.shape);

  torch::Tensor out;
  using clock = std::chrono::steady_clock;
  std::vector<double> times_ms;
  double total_ms = 0.0;
  if (a.chunk > 0) {
    // Evaluation: every row once, in batches of --chunk, in one process (no warm-up, no repeats).
    std::vector<torch::Tensor> parts;
    for (int64_t i = 0; i < x.size(0); i += a.chunk) {
      const auto t0 = clock::now();
      parts.push_back(module(x.slice(0, i, std::min<int64_t>(i + a.chunk, x.size(0)))));
      times_ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - t0).count());
    }
    out = torch::cat(parts, 0);
  }
  for (int i = 0; a.chunk == 0 && i < a.warmup; ++i) out = module(x);

  while (a.chunk == 0 && static_cast<long>(times_ms.size()) < a.max_iters &&
         (static_cast<long>(times_ms.size()) < a.min_iters || total_ms < a.min_time_ms)) {
    const auto t0 = clock::now();
    out = module(x);
    const auto t1 = clock::now();
    const double ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    times_ms.push_back(ms);
    total_ms += ms;
  }

  const torch::Tensor result = out.to(torch::kFloat32).contiguous();
  if (!a.output.empty()) write_output(a.output, result);

  std::ostringstream js;
  js.precision(6);
  js << std::fixed << "{\"times_ms\": [";
  for (size_t i = 0; i < times_ms.size(); ++i) js << (i ? ", " : "") << times_ms[i];
  js << "], \"threads\": " << at::get_num_threads() << ", \"qengine\": \""
     << (at::globalContext().qEngine() == at::QEngine::FBGEMM ? "fbgemm"
         : at::globalContext().qEngine() == at::QEngine::X86  ? "x86"
                                                               : "other")
     << "\", \"torch_version\": \"" << TORCH_VERSION << "\", \"output_shape\": [";
  for (int64_t i = 0; i < result.dim(); ++i) js << (i ? ", " : "") << result.size(i);
  js << "]}";
  std::cout << js.str() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  try {
    args = parse_args(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "runner: " << e.what() << "\n";
    return 2;
  }
  try {
    return run(args);
  } catch (const c10::Error& e) {
    std::cerr << "runner: " << e.what_without_backtrace() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "runner: " << e.what() << "\n";
  }
  return 1;
}
