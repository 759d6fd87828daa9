//! The training losses: cross-entropy with label smoothing, and distillation from a teacher's
//! logits at a temperature.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// Mean cross-entropy with optional label smoothing.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>, smoothing: f64) -> Tensor<1> {
    let logp = log_softmax(logits, 1);
    let nll = logp.clone().gather(1, targets.unsqueeze_dim(1)).mean().neg();
    if smoothing > 0.0 {
        nll.mul_scalar(1.0 - smoothing) + logp.mean().neg().mul_scalar(smoothing)
    } else {
        nll
    }
}

/// Knowledge distillation (Hinton et al. 2015): the batch mean of
/// `weight · T² · KL(softmax(t/T) ‖ softmax(s/T)) + (1 − weight) · CE(s, labels)`, with `t`
/// the teacher's and `s` the student's logits. The T² keeps the soft term's gradient scale
/// independent of the temperature.
pub fn distillation_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    targets: Tensor<1, Int>,
    temperature: f64,
    weight: f64,
) -> Tensor<1> {
    distilled(student, teacher, temperature, weight, |s| cross_entropy(s, targets, 0.0))
}

/// [`distillation_loss`] with another label term: `weight · soft_loss + (1 − weight) ·
/// labels(student)` (the label term not computed at weight 1), e.g. mixup's blended labels.
pub fn distilled(
    student: Tensor<2>,
    teacher: Tensor<2>,
    temperature: f64,
    weight: f64,
    labels: impl FnOnce(Tensor<2>) -> Tensor<1>,
) -> Tensor<1> {
    let soft = soft_loss(student.clone(), teacher, temperature).mul_scalar(weight);
    if weight < 1.0 {
        soft + labels(student).mul_scalar(1.0 - weight)
    } else {
        soft
    }
}

/// The soft term of [`distillation_loss`]: the batch mean of `T² · KL(softmax(t/T) ‖ softmax(s/T))`.
pub fn soft_loss(student: Tensor<2>, teacher: Tensor<2>, temperature: f64) -> Tensor<1> {
    let n = student.dims()[0].max(1) as f64;
    let log_ps = log_softmax(student.div_scalar(temperature), 1);
    let log_pt = log_softmax(teacher.div_scalar(temperature), 1);
    let kl = (log_pt.clone().exp() * (log_pt - log_ps)).sum().div_scalar(n);
    kl.mul_scalar(temperature * temperature)
}
