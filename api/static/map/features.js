/* The small Leaflet map of the OGC API – Features HTML pages (an item, a page of items). No inline script
   (the pages run under a Content-Security-Policy without 'unsafe-inline'): the features come from the
   <script id="data" type="application/json"> block, the options from data-attributes of #map. */
(function () {
  "use strict";
  var el = document.getElementById("map");
  var dataEl = document.getElementById("data");
  if (!el || !dataEl || !window.L) return;
  var d = el.dataset;
  var data = JSON.parse(dataEl.textContent);
  var colour = d.colour || "#1b5e20";
  var radius = Number(d.radius || 6);
  var map = L.map(el);
  if (d.basemap) {
    var bm = JSON.parse(d.basemap);
    L.tileLayer(bm.url, { maxZoom: Number(bm.maxzoom) || 19, attribution: bm.attribution || "" }).addTo(map);
  }
  var style = { color: colour };
  if (d.weight) style.weight = Number(d.weight);
  var options = {
    style: style,
    pointToLayer: function (f, ll) { return L.circleMarker(ll, { radius: radius, color: colour }); }
  };
  if (d.itemUrl) {   // a page of items: each feature's popup links to its own page
    options.onEachFeature = function (f, layer) {
      var a = document.createElement("a");
      a.href = d.itemUrl + encodeURIComponent(f.id) + (d.itemQuery || "");
      a.textContent = "#" + f.id;
      layer.bindPopup(a);
    };
  }
  var lyr = L.geoJSON(data, options).addTo(map);
  var b = lyr.getBounds();
  if (b.isValid()) {
    map.fitBounds(b, d.fitMaxzoom ? { maxZoom: Number(d.fitMaxzoom) } : undefined);
  } else {
    map.setView([10.5, 106.5], 8);
  }
})();
