"""Built-in plugin: the retouching operations of the data engine (:mod:`mofrr_core.retouch`).

One row per implementation: (op, api, function, region, algorithm family, description). Which
apis are held out of training is *not* decided here but in ``mofrr_core/retouch/heldout.yaml``.
"""

from mofrr_core.hookspecs import hookimpl
from mofrr_core.spec import RetouchOpSpec


def builtin_apis() -> list[tuple]:
    """``(op, api, fn, region, family, description)`` of every built-in implementation."""
    from mofrr_core.retouch import (
        eye,
        eye_mesh,
        lifting,
        lifting_mesh,
        smoothing,
        smoothing_edge,
        whitening,
        whitening_color,
        whitening_local,
    )
    from mofrr_core.retouch import smoothing_filters as sf

    return [
        ("white", "curve", whitening.whiten_curve, "skin", "tone-curve", "random RGB tone curve + tint"),
        ("white", "lab", whitening.whiten_lab, "skin", "lab", "CIELAB lightness curve + chroma cut"),
        ("white", "gains", whitening_color.whiten_gains, "face", "channel-gain", "per-channel RGB gains"),
        ("white", "hsv", whitening_color.whiten_hsv, "skin", "hsv", "HSV value lift + saturation cut"),
        ("white", "ycbcr", whitening_color.whiten_ycbcr, "face", "ycbcr", "YCbCr luma curve + chroma pull"),
        ("white", "exposure", whitening_color.whiten_exposure, "image", "exposure-gamma",
         "linear-light exposure with roll-off + gamma"),
        ("white", "lut", whitening_local.whiten_lut, "face", "lut3d", "17^3 colour LUT preset, trilinear"),
        ("white", "retinex", whitening_local.whiten_retinex, "skin", "local-tone",
         "retinex-style local tone map (base compressed, detail kept)"),
        ("smooth", "bilateral", smoothing.smooth_bilateral, "image", "bilateral", "bilateral + high-pass blend"),
        ("smooth", "guided", smoothing.smooth_guided, "image", "guided", "He et al. guided filter"),
        ("smooth", "surface", sf.smooth_surface, "image", "surface-blur", "surface blur (threshold window)"),
        ("smooth", "median", sf.smooth_median, "image", "median", "median filter + detail re-injection"),
        ("smooth", "morph", sf.smooth_morph, "image", "morphological", "grey closing/opening"),
        ("smooth", "freqsep", sf.smooth_freqsep, "image", "frequency-separation",
         "frequency separation, high band dropped or re-injected"),
        ("smooth", "softfocus", sf.smooth_softfocus, "image", "gaussian-soft-focus", "whole-image soft focus"),
        ("smooth", "domain", smoothing_edge.smooth_domain, "skin", "domain-transform",
         "domain-transform recursive filter"),
        ("smooth", "wavelet", smoothing_edge.smooth_wavelet, "skin", "wavelet-shrinkage",
         "à-trous wavelet soft thresholding"),
        ("face", "liquify", lifting.lift_face, "face", "liquify", "forward-warp brushes on the jaw contour"),
        ("face", "rbf", lifting.lift_face_rbf, "face", "rbf", "Wendland RBF field, features pinned"),
        ("face", "mls", lifting_mesh.lift_face_mls, "face", "mls", "moving least squares on contour controls"),
        ("face", "tps", lifting_mesh.lift_face_tps, "face", "tps", "thin-plate spline on contour controls"),
        ("face", "pwa", lifting_mesh.lift_face_pwa, "face", "piecewise-affine", "Delaunay piecewise-affine mesh"),
        ("face", "squeeze", lifting_mesh.lift_face_squeeze, "face", "axis-squeeze",
         "horizontal compression of the lower face"),
        ("face", "lines", lifting_mesh.lift_face_lines, "face", "feature-lines", "Beier-Neely line morph"),
        ("face", "idw", lifting_mesh.lift_face_idw, "face", "idw", "Shepard inverse-distance weighting"),
        ("eye", "bulge", eye.enlarge_eyes, "face", "radial-bulge", "radial magnification with a falloff"),
        ("eye", "ellipse", eye_mesh.enlarge_eyes_ellipse, "face", "elliptical-scale",
         "uniform scale on an inner ellipse, blended out"),
        ("eye", "lid", eye_mesh.enlarge_eyes_lid, "face", "lid-stretch", "lids pushed apart (across-eye stretch)"),
        ("eye", "mls", eye_mesh.enlarge_eyes_mls, "face", "mls", "moving least squares on the eye contour"),
        ("eye", "tps", eye_mesh.enlarge_eyes_tps, "face", "tps", "thin-plate spline on the eye contour"),
        ("eye", "pwa", eye_mesh.enlarge_eyes_pwa, "face", "piecewise-affine", "piecewise-affine eye mesh"),
        ("eye", "lines", eye_mesh.enlarge_eyes_lines, "face", "feature-lines", "Beier-Neely eye contour lines"),
        ("eye", "idw", eye_mesh.enlarge_eyes_idw, "face", "idw", "Shepard IDW on the eye contour"),
    ]


@hookimpl
def register_retouch_ops(register):
    for op, api, fn, region, family, description in builtin_apis():
        register(RetouchOpSpec(name=op, fn=fn, api=api, region=region, family=family, description=description))
