/* The people's markers as one WebGL layer of the map: every marker drawn from one buffer.
 *
 * A GeoJSON source hands its points to MapLibre's worker, which cuts them into tiles,
 * encodes each tile and builds its buffers before anything is drawn: with 20,000 people
 * that took seconds on a CPU-rendered map, at the first load and again after each update.
 * Here the markers go into one vertex buffer and the next frame draws them, styled as the
 * circle layer they replace: radius and white stroke by zoom, the role's colour, stale
 * people grey at 0.75 opacity, smaller when the map is pitched away. A custom layer cannot
 * be queried, so the marker under the pointer is found here too (`hit`).
 */

// As MapLibre's interpolate expressions: [zoom, CSS pixels], linear, clamped at both ends.
const RADIUS_STOPS = [[9, 2.5], [12, 3.5], [14, 5.5], [17, 8]];
const STROKE_STOPS = [[9, 0.5], [13, 1.5]];
export const STALE_OPACITY = 0.75;

const VERTEX_SHADER = `
precision highp float;
attribute vec2 a_pos;
attribute vec4 a_color;
uniform mat4 u_matrix;
uniform float u_size;
uniform float u_camera_to_center;
varying vec4 v_color;
void main() {
  gl_Position = u_matrix * vec4(a_pos, 0.0, 1.0);
  // As MapLibre's circles (circle-pitch-scale: map): smaller where the pitched map is farther.
  gl_PointSize = u_size * u_camera_to_center / gl_Position.w;
  v_color = a_color;
}`;

// MapLibre's circle fragment shader, on a point sprite: a blurred edge one device pixel
// wide, the white stroke outside radius / (radius + stroke), premultiplied alpha.
const FRAGMENT_SHADER = `
precision mediump float;
uniform float u_blur;
uniform float u_inner;
uniform float u_stroke;
varying vec4 v_color;
void main() {
  float extrude_length = length(gl_PointCoord * 2.0 - 1.0);
  float opacity_t = smoothstep(0.0, u_blur, 1.0 - extrude_length);
  float color_t = u_stroke < 0.01 ? 0.0 : smoothstep(-u_blur, 0.0, extrude_length - u_inner);
  vec4 fill = vec4(v_color.rgb * v_color.a, v_color.a);
  gl_FragColor = opacity_t * mix(fill, vec4(1.0), color_t);
}`;

/** Return the value of piecewise-linear zoom stops at `zoom`. */
function interpolate(stops, zoom) {
  if (zoom <= stops[0][0]) return stops[0][1];
  for (let i = 1; i < stops.length; i += 1) {
    const [z1, v1] = stops[i];
    if (zoom <= z1) {
      const [z0, v0] = stops[i - 1];
      return v0 + ((v1 - v0) * (zoom - z0)) / (z1 - z0);
    }
  }
  return stops[stops.length - 1][1];
}

/** Return a marker's radius and stroke width in CSS pixels at `zoom`. */
export function markerSize(zoom) {
  return { radius: interpolate(RADIUS_STOPS, zoom), stroke: interpolate(STROKE_STOPS, zoom) };
}

/** Return [r, g, b] (0-255) of a "#rrggbb" colour. */
function rgb(hex) {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** Return Web Mercator x of a longitude, in world units (0-1), as MapLibre's. */
export function mercatorX(lon) {
  return (180 + lon) / 360;
}

/** Return Web Mercator y of a latitude, in world units (0-1), as MapLibre's. */
export function mercatorY(lat) {
  return (180 - (180 / Math.PI) * Math.log(Math.tan(Math.PI / 4 + (lat * Math.PI) / 360))) / 360;
}

function compile(gl, type, source) {
  const shader = gl.createShader(type);
  gl.shaderSource(shader, source);
  gl.compileShader(shader);
  return shader;
}

/** The markers layer: add it with map.addLayer, give it markers with `set`. */
export class PeopleDots {
  constructor(id, map) {
    this.id = id;
    this.type = "custom";
    this.renderingMode = "2d";
    this.map = map;
    this.count = 0;
    this.ids = [];
    this.lonLat = new Float64Array(0); // as drawn (shifted for the basemap), for hit tests
    this.vertices = new ArrayBuffer(0);
    this.origin = [0, 0];
    this.dirty = false;
    this.drawnCount = 0; // markers in the last frame drawn
    this.colors = new Map(); // "#rrggbb" -> [r, g, b]
  }

  onAdd(map, gl) {
    const program = gl.createProgram();
    this.shaders = [compile(gl, gl.VERTEX_SHADER, VERTEX_SHADER), compile(gl, gl.FRAGMENT_SHADER, FRAGMENT_SHADER)];
    for (const shader of this.shaders) gl.attachShader(program, shader);
    gl.bindAttribLocation(program, 0, "a_pos");
    gl.bindAttribLocation(program, 1, "a_color");
    // Linked here, checked at the first draw: asking now would wait for the GPU process.
    gl.linkProgram(program);
    this.program = program;
    this.uniforms = null;
    this.buffer = gl.createBuffer();
    this.dirty = true;
  }

  /** Check the program once, when first used, and find its uniforms. */
  prepare(gl) {
    const { program } = this;
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) {
      const log = this.shaders.map((s) => gl.getShaderInfoLog(s)).join("\n");
      throw new Error(`people markers: ${gl.getProgramInfoLog(program)} ${log}`);
    }
    this.uniforms = {};
    for (const name of ["u_matrix", "u_size", "u_camera_to_center", "u_blur", "u_inner", "u_stroke"]) {
      this.uniforms[name] = gl.getUniformLocation(program, name);
    }
  }

  onRemove(map, gl) {
    gl.deleteBuffer(this.buffer);
    gl.deleteProgram(this.program);
    for (const shader of this.shaders) gl.deleteShader(shader);
  }

  /**
   * Draw `markers` from the next frame on, in order (the last on top).
   *
   * Each is {id, lon, lat, color, stale}: lon/lat as drawn, color "#rrggbb".
   */
  set(markers) {
    const n = markers.length;
    // Positions relative to an origin near the markers: float32 keeps centimetres there.
    const first = markers[0];
    this.origin = first ? [mercatorX(first.lon), mercatorY(first.lat)] : [0, 0];
    const [ox, oy] = this.origin;
    const vertices = new ArrayBuffer(n * 12);
    const floats = new Float32Array(vertices);
    const bytes = new Uint8Array(vertices);
    const lonLat = new Float64Array(n * 2);
    const ids = new Array(n);
    for (let i = 0; i < n; i += 1) {
      const m = markers[i];
      ids[i] = m.id;
      lonLat[2 * i] = m.lon;
      lonLat[2 * i + 1] = m.lat;
      floats[3 * i] = mercatorX(m.lon) - ox;
      floats[3 * i + 1] = mercatorY(m.lat) - oy;
      let color = this.colors.get(m.color);
      if (!color) this.colors.set(m.color, (color = rgb(m.color)));
      const at = 12 * i + 8;
      bytes[at] = color[0];
      bytes[at + 1] = color[1];
      bytes[at + 2] = color[2];
      bytes[at + 3] = m.stale ? Math.round(255 * STALE_OPACITY) : 255;
    }
    this.ids = ids;
    this.lonLat = lonLat;
    this.vertices = vertices;
    this.count = n;
    this.dirty = true;
    this.map.triggerRepaint();
  }

  render(gl, matrix) {
    if (!this.uniforms) this.prepare(gl);
    if (this.dirty) {
      gl.bindBuffer(gl.ARRAY_BUFFER, this.buffer);
      // Empty, one invisible point: the frames drawn before the people arrive compile
      // the program for the GPU, so the first frame with everyone does not wait for it.
      gl.bufferData(gl.ARRAY_BUFFER, this.count ? this.vertices : new ArrayBuffer(12), gl.DYNAMIC_DRAW);
      this.dirty = false;
    }
    this.drawnCount = this.count;
    const { map } = this;
    const { radius, stroke } = this.count ? markerSize(map.getZoom()) : { radius: 0, stroke: 0 };
    const pixelRatio = map.getPixelRatio();
    const [ox, oy] = this.origin;
    // matrix × translate(origin), in double precision before it becomes float32.
    const m = matrix;
    const shifted = new Float32Array(m);
    for (let row = 0; row < 4; row += 1) shifted[12 + row] = m[row] * ox + m[4 + row] * oy + m[12 + row];
    gl.useProgram(this.program);
    gl.uniformMatrix4fv(this.uniforms.u_matrix, false, shifted);
    gl.uniform1f(this.uniforms.u_size, 2 * (radius + stroke) * pixelRatio);
    gl.uniform1f(this.uniforms.u_camera_to_center, map.transform.cameraToCenterDistance);
    gl.uniform1f(this.uniforms.u_blur, this.count ? 1 / (pixelRatio * (radius + stroke)) : 1);
    gl.uniform1f(this.uniforms.u_inner, this.count ? radius / (radius + stroke) : 1);
    gl.uniform1f(this.uniforms.u_stroke, stroke);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.buffer);
    gl.enableVertexAttribArray(0);
    gl.enableVertexAttribArray(1);
    gl.vertexAttribPointer(0, 2, gl.FLOAT, false, 12, 0);
    gl.vertexAttribPointer(1, 4, gl.UNSIGNED_BYTE, true, 12, 8);
    gl.drawArrays(gl.POINTS, 0, Math.max(this.count, 1));
    gl.disableVertexAttribArray(0);
    gl.disableVertexAttribArray(1);
  }

  /** Return the id of the marker under a screen point (within `slop` pixels), or null. */
  hit(point, slop = 0) {
    if (!this.count) return null;
    const { map } = this;
    const { radius, stroke } = markerSize(map.getZoom());
    const reach = radius + stroke + slop;
    // The pointer's neighbourhood as a lon/lat box (a superset when the map is rotated).
    const corners = [[-reach, -reach], [reach, -reach], [reach, reach], [-reach, reach]]
      .map(([dx, dy]) => map.unproject([point.x + dx, point.y + dy]));
    const west = Math.min(...corners.map((c) => c.lng));
    const east = Math.max(...corners.map((c) => c.lng));
    const south = Math.min(...corners.map((c) => c.lat));
    const north = Math.max(...corners.map((c) => c.lat));
    const { lonLat } = this;
    let best = null;
    let bestDistance = Infinity;
    for (let i = 0; i < this.count; i += 1) {
      const lon = lonLat[2 * i];
      const lat = lonLat[2 * i + 1];
      if (lon < west || lon > east || lat < south || lat > north) continue;
      const p = map.project([lon, lat]);
      const distance = Math.hypot(p.x - point.x, p.y - point.y);
      // Ties go to the later marker: it is drawn on top.
      if (distance <= reach && distance <= bestDistance) {
        best = this.ids[i];
        bestDistance = distance;
      }
    }
    return best;
  }
}
