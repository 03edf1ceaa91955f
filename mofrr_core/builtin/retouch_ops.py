"""Built-in plugin: the retouching operations of the data engine (:mod:`mofrr_core.retouch`)."""

from mofrr_core.hookspecs import hookimpl
from mofrr_core.spec import RetouchOpSpec


@hookimpl
def register_retouch_ops(register):
    from mofrr_core.retouch.eye import enlarge_eyes
    from mofrr_core.retouch.lifting import lift_face, lift_face_rbf
    from mofrr_core.retouch.smoothing import smooth_bilateral, smooth_guided
    from mofrr_core.retouch.whitening import whiten_curve, whiten_lab

    register(RetouchOpSpec(name="white", fn=whiten_curve, api="curve",
                           description="skin whitening: random RGB tone curve + tint in the skin mask"))
    register(RetouchOpSpec(name="white", fn=whiten_lab, api="lab",
                           description="skin whitening: CIELAB lightness curve + chroma reduction"))
    register(RetouchOpSpec(name="smooth", fn=smooth_bilateral, api="bilateral",
                           description="skin smoothing: bilateral filter + high-pass blend in the skin mask"))
    register(RetouchOpSpec(name="smooth", fn=smooth_guided, api="guided",
                           description="skin smoothing: guided filter in the skin mask"))
    register(RetouchOpSpec(name="face", fn=lift_face, api="liquify",
                           description="face lifting: liquify push of jaw and cheeks towards the face centre"))
    register(RetouchOpSpec(name="face", fn=lift_face_rbf, api="rbf",
                           description="face lifting: jaw contour moved, features pinned, Wendland RBF field"))
    register(RetouchOpSpec(name="eye", fn=enlarge_eyes, api="bulge",
                           description="eye enlarging: radial magnification around each eye centre"))
