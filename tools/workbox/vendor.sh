#!/bin/sh
# Copy the Workbox runtime from node_modules into the app's static files (docs/offline.md).
# Run from this folder (package.json pins every version exactly; no lock file is kept):
#   npm install && npm run vendor
# then set WORKBOX_VERSION in src/speciosa/web/offline_views.py to the same version.
set -eu
version=$(node -p "require('./node_modules/workbox-sw/package.json').version")
dest=../../src/speciosa/web/static/speciosa/workbox/$version
rm -rf "$dest"
mkdir -p "$dest"
cp node_modules/workbox-sw/build/workbox-sw.js node_modules/workbox-sw/build/workbox-sw.js.map "$dest/"
for m in core routing strategies precaching expiration; do
  cp "node_modules/workbox-$m/build/workbox-$m.prod.js" "node_modules/workbox-$m/build/workbox-$m.prod.js.map" "$dest/"
done
cp node_modules/workbox-sw/LICENSE "$dest/LICENSE"
{
  echo "Workbox $version (https://github.com/GoogleChrome/workbox), MIT licence (LICENSE here)."
  echo "Copied from the npm packages by tools/workbox/vendor.sh; do not edit. Packages:"
  for m in sw core routing strategies precaching expiration; do
    node -p "const p=require('./node_modules/workbox-$m/package.json'); p.name+'@'+p.version+' '+p.license"
  done
} > "$dest/VERSION.txt"
echo "vendored into $dest"
