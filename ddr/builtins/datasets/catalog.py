"""Static facts about the built-in datasets: normalisation constants, class names, wnid lists.

Kept free of heavy imports so that the registration hook can build its specs from the same
constants the loaders normalise with. Means and standard deviations are per channel, as
fractions of the 0..1 pixel range.
"""

from __future__ import annotations

DIGITS_MEAN = (0.3054,)
DIGITS_STD = (0.3189,)
"""Measured on the 1198-image train split of the 16x16 upsampled digits (population std)."""

MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2861,), (0.3530,)
SVHN_MEAN, SVHN_STD = (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
"""The constants the dataset-distillation literature (DC/DSA/DM/MTT code) normalises with."""

DIGIT_NAMES = tuple(str(d) for d in range(10))

FASHION_MNIST_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

CIFAR10_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)

CIFAR100_NAMES = tuple(
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus "
    "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch "
    "crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo "
    "keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse "
    "mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy "
    "porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper "
    "snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television "
    "tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm".split()
)
"""CIFAR-100 fine labels in label-index order (alphabetical, as in the official ``meta`` file)."""

IMAGENETTE = (
    ("n01440764", "tench"),
    ("n02102040", "English springer"),
    ("n02979186", "cassette player"),
    ("n03000684", "chain saw"),
    ("n03028079", "church"),
    ("n03394916", "French horn"),
    ("n03417042", "garbage truck"),
    ("n03425413", "gas pump"),
    ("n03445777", "golf ball"),
    ("n03888257", "parachute"),
)
"""fast.ai Imagenette classes; ImageNet-1K indices 0, 217, 482, 491, 497, 566, 569, 571, 574, 701."""

IMAGEWOOF = (
    ("n02096294", "Australian terrier"),
    ("n02093754", "Border terrier"),
    ("n02111889", "Samoyed"),
    ("n02088364", "beagle"),
    ("n02086240", "Shih-Tzu"),
    ("n02089973", "English foxhound"),
    ("n02087394", "Rhodesian ridgeback"),
    ("n02115641", "dingo"),
    ("n02099601", "golden retriever"),
    ("n02105641", "Old English sheepdog"),
)
"""fast.ai Imagewoof classes in the order of MTT's ``Config.imagewoof`` (ImageNet-1K indices
193, 182, 258, 162, 155, 167, 159, 273, 207, 229), so label ``c`` means the same class as in
distilled sets produced by the MTT/DATM code."""
