#!/bin/sh
# Copy Noto Sans (Latin, with accents) and Noto Sans Thai from Debian's fonts-noto-core into
# the reports' fonts (the visit report and the consent PDF embed them: docs/translation.md).
# Run once from this folder, on Debian, when the fonts are to be updated:
#   sh vendor.sh
# Nothing is downloaded when Speciosa runs; the TTF files are committed.
set -eu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download fonts-noto-core >/dev/null 2>&1 && dpkg-deb -x fonts-noto-core_*.deb x)
deb=$(ls "$work"/fonts-noto-core_*.deb)
version=$(dpkg-deb -f "$deb" Version)
src="$work/x/usr/share/fonts/truetype/noto"
dest=../../src/speciosa/reports/fonts
rm -rf "$dest"
mkdir -p "$dest"
for f in NotoSans-Regular NotoSans-Bold NotoSans-Italic NotoSansThai-Regular NotoSansThai-Bold; do
  cp "$src/$f.ttf" "$dest/$f.ttf"
done
# the SIL Open Font License 1.1, as Debian's copyright file states it for these fonts
{
  echo "Copyright 2010, 2012-2020 Google Inc.; 2015-2020 Google LLC."
  echo "This Font Software is licensed under the SIL Open Font License, Version 1.1."
  echo
  awk 'prev == "License: OFL-1.1" && $0 == " PREAMBLE" {on = 1}
       on && $0 == "" {exit}
       on {sub(/^ /, ""); if ($0 == ".") $0 = ""; print}
       {prev = $0}' "$work/x/usr/share/doc/fonts-noto-core/copyright"
} > "$dest/OFL.txt"
{
  echo "Noto Sans and Noto Sans Thai (Google, https://notofonts.github.io), SIL Open Font"
  echo "License 1.1 (OFL.txt here). Copied from Debian's fonts-noto-core $version by"
  echo "tools/fonts/vendor.sh; do not edit. Files and SHA-256:"
  (cd "$dest" && sha256sum ./*.ttf)
} > "$dest/VERSION.txt"
echo "vendored into $dest"
