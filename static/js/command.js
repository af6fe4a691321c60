/* Entry of the live map page (/): the map, the people layer and the three panels. */
import { endSession } from "./api.js";
import { createAlerts } from "./alerts.js";
import { createCoverage } from "./coverage.js";
import { t } from "./i18n.js";
import { createIncidents } from "./incidents.js";
import { createLiveSocket } from "./live.js";
import { createMap } from "./map.js";
import { createPeopleLayer, requestSnapshot } from "./people.js";
import { createMapSearch } from "./search.js";
import { initTabs } from "./ui.js";

const settings = JSON.parse(document.getElementById("settings").textContent);
const canDispatch = settings.user.role === "admin" || settings.user.role === "dispatcher";

document.getElementById("account").textContent = `${settings.user.username} · ${t(`staff.${settings.user.role}`)}`;

// The snapshot is asked for before the map sets itself up (the longest wait). The socket
// connects once the snapshot is drawn: its handshake, the catch-up read of what it missed
// meanwhile and the panels' first reads (alerts, incidents, coverage, all on connect) then
// do not compete with the first draw for the CPU.
const firstSnapshot = requestSnapshot();
const socket = createLiveSocket();
const base = createMap(settings, "map");
const people = createPeopleLayer(base, settings);
people.attach(socket, firstSnapshot).then(() => socket.connect());
const unitsShown = people.loadUnits();
document.getElementById("logout").addEventListener("click", () => {
  endSession().finally(() => {
    socket.disconnect();
    window.location.assign("/login");
  });
});

initTabs("alerts");
const coverage = createCoverage(base, people);
// Coverage tints and labels the units: it waits for them.
const refreshCoverage = () => unitsShown.then(coverage.refresh);
const incidents = createIncidents({ base, people, socket, settings });
const alerts = createAlerts({
  base, people, socket, canDispatch, openIncident: incidents.openIncident, onZoneAlert: refreshCoverage,
});
socket.on("connect", refreshCoverage);
setInterval(refreshCoverage, Math.max(1, settings.coverage_refresh_s) * 1000);

const search = createMapSearch({ base, people, openIncident: incidents.openIncident, geocoder: settings.geocoder });

unitsShown.then(incidents.fillUnits);

// A handle for the browser tests and the benchmark: what the map and the panels hold.
window.__tracker = {
  map: base.map,
  ready: people.ready,
  basemap: base.basemap,
  project: base.project,
  unproject: base.unproject,
  search: search.localResults,
  socket,
  settings,
  people: people.people,
  units: base.units,
  selectPerson: people.selectPerson,
  applyPositions: people.applyPositions,
  renderNow: people.render,
  lastRenderMs: people.lastRenderMs,
  peopleCount: () => people.people.size,
  drawn: people.drawn,
  drawnIds: people.drawnIds,
  markersDrawn: people.markersDrawn,
  command: {
    coverage: coverage.coverage,
    gridState: coverage.gridState,
    unitLabel: coverage.unitLabel,
    refreshCoverage: coverage.refresh,
    alerts: alerts.alerts,
    incident: incidents.incident,
    incidents: incidents.rows,
    openIncident: incidents.openIncident,
  },
};
