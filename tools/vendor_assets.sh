#!/usr/bin/env bash
# Fetch the JavaScript the website needs from the npm registry, so that no page loads anything
# from a CDN: require.js and @jupyter-widgets/html-manager (widgets on the static pages),
# MathJax 3 (equations) and ONNX Runtime Web (chapter 06 runs a trained model in the page). `npm pack` downloads each pinned tarball and checks it against the
# registry's integrity hash; we check it again against the hash pinned here, then unpack only
# what the pages load into DEST (default: vendor/, git-ignored). _config.yml adds DEST to
# Sphinx's html_static_path, so these files are served from the site's _static/.
set -euo pipefail

DEST=${1:-vendor}

# name@version and the sha512 integrity of its tarball, as `npm view NAME@VERSION dist.integrity`
# prints it. html-manager 1.0.x is the embedder for ipywidgets 8 (controls 5.x, base 6.x).
PACKAGES=(
  "requirejs@2.3.8 sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw=="
  "@jupyter-widgets/html-manager@1.0.15 sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA=="
  "mathjax@3.2.2 sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="
  "onnxruntime-web@1.30.0 sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
)

if ! command -v npm > /dev/null; then
  echo "vendor_assets.sh: expected npm on the PATH (apt-get install npm), got none" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Download, check and unpack one package into $work/<name>/package.
fetch() {
  local spec=$1 integrity=$2 name=${1%@*} got
  got=$(cd "$work" && npm pack --json --loglevel=error "$spec" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["integrity"])')
  if [[ $got != "$integrity" ]]; then
    echo "vendor_assets.sh: $spec: expected integrity $integrity, got $got" >&2
    exit 1
  fi
  mkdir -p "$work/$name"
  tar -xzf "$work"/*.tgz -C "$work/$name"
  rm "$work"/*.tgz
}

for entry in "${PACKAGES[@]}"; do
  fetch $entry
done

rm -rf "$DEST"
mkdir -p "$DEST/requirejs" "$DEST/widgets/@jupyter-widgets/html-manager/dist" "$DEST/mathjax" \
  "$DEST/onnxruntime-web"

cp "$work/requirejs/package/require.js" "$DEST/requirejs/"

# embed-amd.js defines @jupyter-widgets/{base,controls,html-manager} and
# @jupyter-widgets/html-manager/dist/libembed-amd as named AMD modules, and renders every
# widget view on the page. The CSS of the last two loads Font Awesome (the Play widget's icons)
# from the directory of the module's URL as require.js resolves it: baseUrl (set to widgets/
# by book/_static/widgets-setup.js) plus the module id. So the fonts go beside both.
manager="$work/@jupyter-widgets/html-manager/package"
cp "$manager/dist/embed-amd.js" "$DEST/widgets/@jupyter-widgets/html-manager/dist/"
for dir in "$DEST/widgets/@jupyter-widgets" "$DEST/widgets/@jupyter-widgets/html-manager/dist"; do
  cp "$manager"/dist/*.{woff2,woff,ttf,eot,svg} "$dir/"
done

# MathJax finds its components and fonts relative to the script that loaded it: keep es5/ whole.
cp "$work/mathjax/package/LICENSE" "$DEST/mathjax/"
cp -r "$work/mathjax/package/es5/." "$DEST/mathjax/"

# ONNX Runtime Web unpacks to about 145 MB: keep only the CPU (WebAssembly) runtime as one ES
# module, with the Emscripten glue bundled in, and the one WebAssembly binary it loads. The
# package ships no LICENSE file; its package.json names the licence (MIT) and the version.
ort="$work/onnxruntime-web/package"
cp "$ort/package.json" "$ort/dist/ort.wasm.bundle.min.mjs" "$ort/dist/ort-wasm-simd-threaded.wasm" \
  "$DEST/onnxruntime-web/"

printf '%s\n' "${PACKAGES[@]%% *}" > "$DEST/VERSIONS"
echo "vendored into $DEST/: $(tr '\n' ' ' < "$DEST/VERSIONS")"
