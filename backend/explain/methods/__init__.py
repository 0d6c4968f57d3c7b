"""One module per explanation method; importing this package registers them all in `METHODS`."""

from backend.explain.methods import (  # noqa: F401  (imported for registration)
    grad_x_input,
    gradcam,
    gradient,
    gradient_t,
    integrated_gradients,
    lrp,
    lrp_t,
    occlusion,
    smoothgrad,
)
