/* The /live Socket.IO connection of a staff page and the header's connection status.
 *
 * Socket.IO is the vendor build in /static/vendor (a classic script: window.io).
 */
import { getJson } from "./api.js";
import { t } from "./i18n.js";

/** Return the /live socket (not yet connected); its state shows in #live-status. */
export function createLiveSocket() {
  const socket = window.io("/live", { transports: ["websocket"], autoConnect: false });
  const status = document.getElementById("live-status");
  const setStatus = (state) => {
    status.dataset.state = state;
    status.textContent = t(`status.${state}`);
  };
  setStatus("connecting");
  socket.on("connect", () => setStatus("live"));
  socket.on("disconnect", () => setStatus("offline"));
  socket.on("connect_error", () => {
    setStatus("offline");
    // A refused connection is not retried by the client: find out whether the session ended.
    getJson("/api/v1/session").then(() => {
      if (!socket.active) setTimeout(() => socket.connect(), 2000);
    });
  });
  return socket;
}
