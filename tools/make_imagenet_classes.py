"""Write assets/imagenet_classes.tsv: ImageNet-1k index, WNID, torchvision's name, WordNet synonyms.

Run once, offline after one download (the table is committed; nothing reads the wheel at run time):

    pip download timm==1.0.31 --no-deps -d /tmp/timm     # Apache-2.0
    python tools/make_imagenet_classes.py /tmp/timm/timm-1.0.31-py3-none-any.whl

Sources: the WNIDs in class-index order (`timm/data/_info/imagenet_synsets.txt`) and WordNet's lemmas
per WNID (`timm/data/_info/imagenet_synset_to_lemma.txt`), both read out of the timm wheel as a zip;
the display names are torchvision's `_IMAGENET_CATEGORIES` (the names our cards carry). The script
checks that every torchvision name is one of its WNID's lemmas, except the two that torchvision
disambiguates ("crane bird", "maillot tank suit").
"""

from __future__ import annotations

import hashlib
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "assets" / "imagenet_classes.tsv"
_INFO = "timm/data/_info/"
_TORCHVISION_ONLY = {"crane bird", "maillot tank suit"}


def main(wheel: str) -> int:
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    digest = hashlib.sha256(Path(wheel).read_bytes()).hexdigest()
    with zipfile.ZipFile(wheel) as z:
        wnids = z.read(_INFO + "imagenet_synsets.txt").decode().split()
        lemmas = dict(
            line.split("\t", 1)
            for line in z.read(_INFO + "imagenet_synset_to_lemma.txt").decode().splitlines()
        )
    assert len(wnids) == len(_IMAGENET_CATEGORIES) == 1000
    rows = []
    for index, (wnid, name) in enumerate(zip(wnids, _IMAGENET_CATEGORIES, strict=True)):
        synonyms = [s.strip() for s in lemmas[wnid].split(",") if s.strip()]
        assert name in synonyms or name in _TORCHVISION_ONLY, (index, wnid, name, synonyms)
        rows.append(f"{index}\t{wnid}\t{name}\t{', '.join(synonyms)}")
    header = [
        "# ImageNet-1k: index, WNID, torchvision name, WordNet synonyms (tools/make_imagenet_classes.py)",
        f"# WNIDs and synonyms: timm 1.0.31 wheel (Apache-2.0), sha256 {digest}",
        "# names: torchvision.models._meta._IMAGENET_CATEGORIES",
    ]
    OUT.write_text("\n".join(header + rows) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(rows)} classes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
