// pare patch: ATen's own backward kernels for convolution and batch norm, which tch 0.22 does
// not wrap. Tensors cross the boundary as `at::Tensor*`, like tch's own C API (`tensor`): inputs
// are borrowed, outputs are new heap tensors that Rust owns (tch frees them with `delete`).
#include <ATen/ATen.h>
#include <cstring>
#include <exception>
#include <vector>

static void pare_error(const std::exception &e, char *err, size_t errlen) {
  if (errlen == 0) return;
  std::strncpy(err, e.what(), errlen - 1);
  err[errlen - 1] = 0;
}

extern "C" {

// Gradients of a convolution (not transposed, no bias) for its input and/or weight.
// Returns 0, or 1 with the message in `err`.
int pare_convolution_backward(at::Tensor *grad, at::Tensor *input, at::Tensor *weight,
                              const int64_t *stride, const int64_t *padding,
                              const int64_t *dilation, int64_t ndim, int64_t groups,
                              int need_input, int need_weight, at::Tensor **input_grad,
                              at::Tensor **weight_grad, char *err, size_t errlen) {
  try {
    std::vector<int64_t> output_padding(ndim, 0);
    auto r = at::convolution_backward(
        *grad, *input, *weight, c10::nullopt, at::IntArrayRef(stride, ndim),
        at::IntArrayRef(padding, ndim), at::IntArrayRef(dilation, ndim), false,
        output_padding, groups, {need_input != 0, need_weight != 0, false});
    *input_grad = need_input ? new at::Tensor(std::get<0>(r)) : nullptr;
    *weight_grad = need_weight ? new at::Tensor(std::get<1>(r)) : nullptr;
    return 0;
  } catch (const std::exception &e) {
    pare_error(e, err, errlen);
    return 1;
  }
}

// Gradients of training-mode batch norm for input, weight and bias, from the batch mean and
// 1/sqrt(var + eps) that `native_batch_norm` saved.
int pare_batch_norm_backward(at::Tensor *grad, at::Tensor *input, at::Tensor *weight,
                             at::Tensor *save_mean, at::Tensor *save_invstd, double eps,
                             at::Tensor **input_grad, at::Tensor **weight_grad,
                             at::Tensor **bias_grad, char *err, size_t errlen) {
  try {
    auto r = at::native_batch_norm_backward(*grad, *input, *weight, c10::nullopt, c10::nullopt,
                                            *save_mean, *save_invstd, true, eps,
                                            {true, true, true});
    *input_grad = new at::Tensor(std::get<0>(r));
    *weight_grad = new at::Tensor(std::get<1>(r));
    *bias_grad = new at::Tensor(std::get<2>(r));
    return 0;
  } catch (const std::exception &e) {
    pare_error(e, err, errlen);
    return 1;
  }
}
}
