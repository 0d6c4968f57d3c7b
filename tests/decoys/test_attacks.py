"""Input attacks on saliency: the prediction is kept, the change stays within epsilon, and the attacked
quantity moves the way the attack wants."""

from __future__ import annotations

import pytest

from backend.decoys.attacks import _map, _Shifted, attack_input
from backend.errors import InvalidConfig


@pytest.mark.parametrize("attack", ["topk", "target_region", "mass_center"])
def test_attacks_keep_the_label_and_the_budget(tiny_net, normalize, image, attack):
    eps = 8 / 255
    adv = attack_input(tiny_net, image, normalize, attack, epsilon=eps, steps=4, step_size=2 / 255)
    assert float((adv - image).abs().max()) <= eps + 1e-6
    assert float(adv.min()) >= 0 and float(adv.max()) <= 1
    assert int(tiny_net(normalize(adv[None])).argmax(1)) == int(tiny_net(normalize(image[None])).argmax(1))


def test_target_region_attack_raises_the_regions_share_of_saliency(tiny_net, normalize, image):
    label = tiny_net(normalize(image[None])).argmax(1)
    adv = attack_input(tiny_net, image, normalize, "target_region", steps=6, step_size=2 / 255, region=4)
    share = []
    for x in (image, adv):
        h = _map(_Shifted(tiny_net, normalize, x[None].shape), x[None], label, "gradient", None, False)
        share.append(float(h[0, -4:, -4:].sum()))
    assert share[1] > share[0]
    with pytest.raises(InvalidConfig):
        attack_input(tiny_net, image, normalize, "sideways")
