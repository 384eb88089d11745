// Set-up for the widgets on the static pages. _config.yml (nb_ipywidgets_js) loads this file
// after require.js and before @jupyter-widgets/html-manager's embed-amd.js.

// No CDN: require.js resolves the @jupyter-widgets/* modules, and the Font Awesome files their
// CSS loads, under this site's _static/widgets/ (filled by tools/vendor_assets.sh).
window.requirejs.config({
  baseUrl: new URL("widgets/", document.currentScript.src).href,
});

// The theme's Font Awesome script replaces every <i class="fa ..."> with an <svg>. The Play
// widget then finds no <i> to switch between play and pause, and throws on every change of its
// state, which also stops the jslinks to it. "nest" keeps the <i> and draws the <svg> inside.
// Read when the theme's (deferred) fontawesome.js runs, after this file.
window.FontAwesomeConfig = { ...window.FontAwesomeConfig, autoReplaceSvg: "nest" };

// ipywidgets 8 typesets widget labels with MathJax 2's API, MathJax.Hub.Queue, whenever a
// MathJax is on the page; the book loads MathJax 3, which has no Hub. Translate the one call.
// MathJax is loaded with `defer`, so it exists by DOMContentLoaded; widgets render on `load`.
window.addEventListener("DOMContentLoaded", () => {
  const mathjax = window.MathJax;
  if (mathjax && mathjax.startup && !mathjax.Hub) {
    mathjax.Hub = {
      Queue: ([, , element]) =>
        mathjax.startup.promise.then(() => mathjax.typesetPromise([element])),
    };
  }
});
