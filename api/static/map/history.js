/* The small maps of a history page (api/templates/features_history.html): the boundary before (red, dashed) and
   after (green) a change, with the vendored Leaflet, no basemap (works offline). No inline script (CSP). */
(function () {
  "use strict";
  var dataEl = document.getElementById("history-maps");
  if (!dataEl || !window.L) return;
  JSON.parse(dataEl.textContent).forEach(function (m) {
    var el = document.getElementById(m.id);
    if (!el) return;
    var map = L.map(el, { attributionControl: false });
    var group = L.featureGroup().addTo(map);
    var dot = function (colour) {
      return function (f, ll) { return L.circleMarker(ll, { radius: 6, color: colour }); };
    };
    if (m.before) L.geoJSON(m.before, { style: { color: "#c62828", weight: 3, dashArray: "6 4", fillOpacity: 0.05 },
                                        pointToLayer: dot("#c62828") }).addTo(group);
    if (m.after) L.geoJSON(m.after, { style: { color: "#2e7d32", weight: 2, fillOpacity: 0.15 },
                                      pointToLayer: dot("#2e7d32") }).addTo(group);
    var b = group.getBounds();
    if (b.isValid()) map.fitBounds(b, { padding: [12, 12], maxZoom: 18 }); else map.setView([10.2, 106.3], 9);
  });
})();
