// After the page's scripts have run (window "load"), record what a reader would see:
// images that failed to load and formulas that did not lay out as maths. The result is put
// on <html data-selfcheck="…"> (JSON), which `docs/browser_check.py` reads from headless
// Chromium's DOM. It changes nothing a reader sees.
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var badImgs = imgs.filter(function (im) { return !im.complete || im.naturalWidth === 0; });
  var maths = Array.prototype.slice.call(document.querySelectorAll("article math"));
  var flat = maths.filter(function (m) {
    var r = m.getBoundingClientRect();
    // rendered MathML has a box; a <math> the browser does not know is laid out as inline text
    // with no box of its own, or shows its raw TeX
    return (r.width === 0 && r.height === 0 && m.offsetParent !== null) ||
      /\\[a-zA-Z]+/.test(m.textContent);
  });
  // TeX that was never turned into maths: delimiters in the text outside code and maths
  var tex = 0, article = document.querySelector("article");
  if (article) {
    var walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
    for (var node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.parentElement.closest("pre, code, math, script, style, .clipboard-copy-txt")) continue;
      if (/\\\(|\\\[|\$\$|[\^_]\{/.test(node.nodeValue)) tex += 1;
    }
  }
  var isMathML = maths.length === 0 || (typeof MathMLElement !== "undefined" &&
    maths[0] instanceof MathMLElement);
  document.documentElement.setAttribute("data-selfcheck", JSON.stringify({
    images: imgs.length,
    images_failed: badImgs.map(function (im) { return (im.getAttribute("src") || "").slice(0, 60); }),
    maths: maths.length,
    maths_unrendered: flat.length + tex,
    mathml_supported: isMathML
  }));
});
