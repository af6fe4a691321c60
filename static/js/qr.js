/* A QR code the server drew (an SVG string) as an <img>: the SVG never joins the page's DOM.
 *
 * An SVG shown through <img> runs no script and loads nothing, whatever it holds, and the
 * page's CSP allows data: images, so the server's markup needs no sanitising here.
 */

/** Return an <img> showing the SVG markup `svg`, described by `alt`. */
export function qrImage(svg, alt) {
  const img = document.createElement("img");
  img.className = "qr-image";
  img.alt = alt;
  img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
  return img;
}
