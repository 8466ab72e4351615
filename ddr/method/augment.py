"""The geometric primitives ddr's augmentations are made of, through the plugin author's door.

    from ddr.method.augment import crop_theta, resized_crop, sample_crop_boxes, warp_affine

All are batched with per-sample parameters drawn from an explicit generator
(:mod:`ddr.engine.geometry`): torchvision's ``RandomResizedCrop`` boxes for a whole batch, the
affine matrix of a crop (optionally mirrored), one bilinear resampling pass.
"""

from ddr.engine.geometry import crop_theta, mirror, resized_crop, sample_crop_boxes, translate, warp_affine

__all__ = ["crop_theta", "mirror", "resized_crop", "sample_crop_boxes", "translate", "warp_affine"]
