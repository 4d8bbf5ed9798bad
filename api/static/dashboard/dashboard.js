/* datso operations dashboard: aggregates from this service drawn with the vendored Chart.js, commune maps as SVG. */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("datso-config").textContent);
  var lang = cfg.lang;
  var root = document.querySelector('link[rel="stylesheet"]').getAttribute("href").replace(/\/static\/.*$/, "");
  var T = {
    vi: {
      activeCodes: "Mã số vùng trồng còn hiệu lực", activeArea: "Diện tích còn hiệu lực", sold: "Lô đất đã đấu giá thành",
      revenue: "Tổng tiền trúng đấu giá", medianPrice: "Giá trúng bình quân", ha: "ha", lots: "lô", bn: "tỷ ₫",
      mpm2: "triệu ₫/m²", granted: "Cấp mới (theo ngày hiệu lực)", toActive: "Chuyển sang hiệu lực (nhật ký)",
      toRevoked: "Thu hồi (nhật ký)", toSuspended: "Đình chỉ (nhật ký)", result: "Giá trúng", start: "Giá khởi điểm",
      noData: "Chưa có dữ liệu", count: "Số lô", area: "Diện tích (ha)", loading: "Đang tải…",
      error: "Không tải được số liệu", updated: "cập nhật", noPrice: "không có lô bán"
    },
    en: {
      activeCodes: "Active growing-area codes", activeArea: "Active growing area", sold: "Auction plots sold",
      revenue: "Total auction proceeds", medianPrice: "Average result price", ha: "ha", lots: "plots", bn: "bn ₫",
      mpm2: "million ₫/m²", granted: "Granted (by valid-from date)", toActive: "Made active (history)",
      toRevoked: "Revoked (history)", toSuspended: "Suspended (history)", result: "Result price", start: "Starting price",
      noData: "No data yet", count: "Plots", area: "Area (ha)", loading: "Loading…", error: "Could not load the figures",
      updated: "updated", noPrice: "no plot sold"
    }
  }[lang];
  var I18N = {
    title: "Operations dashboard: agriculture and public land", subtitle: "Live figures from the province's data service",
    print: "Print report", cropsTitle: "Growing area by crop and status",
    cropsNote: "Hectares; one bar per crop, coloured by the status of the code.",
    codesTitle: "Growing-area codes granted and revoked per month",
    codesNote: "Granted: by valid-from date; revoked, suspended: from the change history.",
    auctionsTitle: "Auction plots by status", auctionsNote: "Plots by their current status.",
    pricesTitle: "Average auction result price by commune",
    pricesNote: "Million VND per m² (sum of result prices / sum of sold plot areas), against the starting price.",
    mapPricesTitle: "Map: result price per m² by commune", mapAreasTitle: "Map: active growing area by commune",
    outcomesTitle: "Auctions per month and their outcome", outcomesNote: "Plots by month of the auction, coloured by status.",
    foot: "Synthetic sample data. Source: datso API", csv: "Download CSV"
  };
  if (lang === "en") {
    document.querySelectorAll("[data-i18n]").forEach(function (el) {
      var t = I18N[el.getAttribute("data-i18n")]; if (t) el.textContent = t;
    });
  }
  document.querySelectorAll("[data-i18n-label]").forEach(function (el) {
    var h = el.closest(".card").querySelector("h2"); el.setAttribute("aria-label", h.textContent);
  });
  var nf = new Intl.NumberFormat(lang === "en" ? "en-GB" : "vi-VN", { maximumFractionDigits: 1 });
  var nf0 = new Intl.NumberFormat(lang === "en" ? "en-GB" : "vi-VN", { maximumFractionDigits: 0 });
  document.getElementById("stamp").textContent = T.updated + " " + new Date().toLocaleString(lang === "en" ? "en-GB" : "vi-VN");
  document.getElementById("print").addEventListener("click", function () { window.print(); });

  var PALETTE = ["#1b7f5a", "#e0a100", "#c0392b", "#2e86c1", "#8e44ad", "#16a085", "#d35400", "#7f8c8d", "#34495e", "#a3c644"];
  function colour(code, i) { return cfg.colours[code] || PALETTE[i % PALETTE.length]; }
  function statusLabel(code) { var s = cfg.statuses[code]; return s ? s[lang] : code; }
  var communeNames = {};
  cfg.boundaries.features.forEach(function (f) { if (f.properties.level === "commune") communeNames[f.properties.code] = f.properties.name; });

  function agg(layer, params) {
    var q = new URLSearchParams(params); q.set("lang", lang);
    return fetch(root + "/collections/" + layer + "/aggregate?" + q.toString(), { headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); });
  }
  function transitions(layer) {
    return fetch(root + "/collections/" + layer + "/transitions?lang=" + lang).then(function (r) {
      if (!r.ok) throw new Error(r.status); return r.json();
    });
  }
  Chart.defaults.animation = false;
  Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif';
  Chart.defaults.color = "#33413a";
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.plugins.legend.labels.boxWidth = 12;

  function empty(id) {
    var c = document.getElementById(id); var p = document.createElement("p");
    p.className = "empty"; p.textContent = T.noData; c.parentNode.appendChild(p);
  }
  // the tiles in a fixed order, whichever answer comes first
  var KPIS = ["activeCodes", "activeArea", "sold", "revenue", "medianPrice"];
  KPIS.forEach(function (k) {
    var d = document.createElement("div"); d.className = "kpi"; d.id = "kpi-" + k; d.hidden = true;
    document.getElementById("kpis").appendChild(d);
  });
  function kpi(label, value, unit) {
    var d = document.getElementById("kpi-" + Object.keys(T).find(function (k) { return T[k] === label; }));
    d.hidden = false;
    d.innerHTML = '<span class="v"></span> <span class="u"></span><span class="l"></span>';
    d.querySelector(".v").textContent = value; d.querySelector(".u").textContent = unit; d.querySelector(".l").textContent = label;
  }

  // -- growing areas by crop and status ----------------------------------------------------------------
  var crops = agg("growing_areas", { group_by: "crop,status", sum: "area_m2" }).then(function (doc) {
    var cropKeys = [], cropLabels = {}, statusKeys = [];
    doc.groups.forEach(function (g) {
      if (cropKeys.indexOf(g.key.crop) < 0) {
        cropKeys.push(g.key.crop);   // a code without a label in this language: "dragon_fruit" -> "Dragon fruit"
        cropLabels[g.key.crop] = g.label.crop !== g.key.crop ? g.label.crop
          : g.key.crop.charAt(0).toUpperCase() + g.key.crop.slice(1).replace(/_/g, " ");
      }
      if (statusKeys.indexOf(g.key.status) < 0) statusKeys.push(g.key.status);
    });
    var order = Object.keys(cfg.statuses);
    statusKeys.sort(function (a, b) { return order.indexOf(a) - order.indexOf(b); });
    var datasets = statusKeys.map(function (s, i) {
      return { label: statusLabel(s), backgroundColor: colour(s, i), data: cropKeys.map(function (c) {
        var g = doc.groups.find(function (x) { return x.key.crop === c && x.key.status === s; });
        return g ? g.values.sum_area_m2 / 10000 : 0; }) };
    });
    new Chart(document.getElementById("chart-crops"), { type: "bar",
      data: { labels: cropKeys.map(function (c) { return cropLabels[c]; }), datasets: datasets },
      options: { scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: T.area } } },
                 plugins: { legend: { position: "bottom" } } } });
    var active = doc.groups.filter(function (g) { return g.key.status === "active"; });
    kpi(T.activeCodes, nf0.format(active.reduce(function (s, g) { return s + g.values.count; }, 0)), "");
    kpi(T.activeArea, nf0.format(active.reduce(function (s, g) { return s + g.values.sum_area_m2; }, 0) / 10000), T.ha);
  });

  // -- codes granted and revoked per month ----------------------------------------------------------------
  var codes = Promise.all([
    agg("growing_areas", { group_by: "valid_from:month", filter: "status <> 'draft'" }),
    transitions("growing_areas")
  ]).then(function (res) {
    var granted = res[0], hist = res[1].transitions;
    var months = {};
    granted.groups.forEach(function (g) { if (g.key["valid_from:month"]) months[g.key["valid_from:month"]] = 1; });
    hist.forEach(function (t) { months[t.period] = 1; });
    var labels = Object.keys(months).sort();
    if (!labels.length) { empty("chart-codes"); return; }
    function series(to) {
      return labels.map(function (m) {
        var t = hist.find(function (x) { return x.period === m && x.to === to; }); return t ? t.count : 0; });
    }
    var ds = [{ label: T.granted, backgroundColor: "#1b7f5a", data: labels.map(function (m) {
      var g = granted.groups.find(function (x) { return x.key["valid_from:month"] === m; }); return g ? g.values.count : 0; }) },
      { label: T.toRevoked, backgroundColor: colour("revoked", 2), data: series("revoked") },
      { label: T.toSuspended, backgroundColor: colour("suspended", 1), data: series("suspended") }];
    new Chart(document.getElementById("chart-codes"), { type: "bar", data: { labels: labels, datasets: ds },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }, plugins: { legend: { position: "bottom" } } } });
  });

  // -- auctions by status -------------------------------------------------------------------------------
  var auctions = agg("auction_plots", { group_by: "status", sum: "area_m2,result_price_vnd" }).then(function (doc) {
    new Chart(document.getElementById("chart-auctions"), { type: "doughnut",
      data: { labels: doc.groups.map(function (g) { return g.label.status + " (" + g.values.count + ")"; }),
              datasets: [{ data: doc.groups.map(function (g) { return g.values.count; }),
                           backgroundColor: doc.groups.map(function (g, i) { return colour(g.key.status, i); }) }] },
      options: { plugins: { legend: { position: window.innerWidth < 600 ? "bottom" : "right" } } } });
    var sold = doc.groups.find(function (g) { return g.key.status === "sold"; });
    kpi(T.sold, sold ? nf0.format(sold.values.count) : "0", T.lots);
    kpi(T.revenue, sold ? nf.format(sold.values.sum_result_price_vnd / 1e9) : "0", T.bn);
    if (sold && sold.values.sum_area_m2) kpi(T.medianPrice, nf.format(sold.values.sum_result_price_vnd / sold.values.sum_area_m2 / 1e6), T.mpm2);
  });

  // -- price per m2 by commune: chart and map --------------------------------------------------------------
  var prices = agg("auction_plots", { group_by: "commune_code", sum: "area_m2,result_price_vnd,starting_price_vnd",
                                      filter: "result_price_vnd IS NOT NULL" }).then(function (doc) {
    var rows = doc.groups.map(function (g) {
      return { code: g.key.commune_code, name: communeNames[g.key.commune_code] || g.key.commune_code,
               result: g.values.sum_result_price_vnd / g.values.sum_area_m2 / 1e6,
               start: g.values.sum_starting_price_vnd / g.values.sum_area_m2 / 1e6, n: g.values.count };
    }).sort(function (a, b) { return b.result - a.result; });
    if (!rows.length) { empty("chart-prices"); } else {
      var top = rows.slice(0, 15);
      new Chart(document.getElementById("chart-prices"), { type: "bar",
        data: { labels: top.map(function (r) { return r.name; }),
                datasets: [{ label: T.result, backgroundColor: "#b03a2e", data: top.map(function (r) { return r.result; }) },
                           { label: T.start, backgroundColor: "#d5b8a8", data: top.map(function (r) { return r.start; }) }] },
        options: { indexAxis: "y", scales: { x: { title: { display: true, text: T.mpm2 } } },
                   plugins: { legend: { position: "bottom" } } } });
    }
    var values = {}; rows.forEach(function (r) { values[r.code] = r.result; });
    drawMap("map-prices", values, ["#fdebd0", "#f5b7a1", "#e67e60", "#c0392b", "#7b241c"], T.mpm2, T.noPrice);
  });

  var areas = agg("growing_areas", { group_by: "commune_code", sum: "area_m2", status: "active" }).then(function (doc) {
    var values = {}; doc.groups.forEach(function (g) { values[g.key.commune_code] = g.values.sum_area_m2 / 10000; });
    drawMap("map-areas", values, ["#e8f6ec", "#b7e1c1", "#74c69d", "#2d9b63", "#1b5e3a"], T.ha, T.noData);
  });

  // -- auctions per month by status ----------------------------------------------------------------------
  var outcomes = agg("auction_plots", { group_by: "auction_date:month,status" }).then(function (doc) {
    var months = [], statuses = [];
    doc.groups.forEach(function (g) {
      var m = g.key["auction_date:month"]; if (m && months.indexOf(m) < 0) months.push(m);
      if (statuses.indexOf(g.key.status) < 0) statuses.push(g.key.status);
    });
    months.sort();
    if (!months.length) { empty("chart-outcomes"); return; }
    var order = Object.keys(cfg.statuses);
    statuses.sort(function (a, b) { return order.indexOf(a) - order.indexOf(b); });
    new Chart(document.getElementById("chart-outcomes"), { type: "bar",
      data: { labels: months, datasets: statuses.map(function (s, i) {
        return { label: statusLabel(s), backgroundColor: colour(s, i), data: months.map(function (m) {
          var g = doc.groups.find(function (x) { return x.key["auction_date:month"] === m && x.key.status === s; });
          return g ? g.values.count : 0; }) }; }) },
      options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
                 plugins: { legend: { position: "bottom" } } } });
  });

  // -- SVG choropleth of communes ------------------------------------------------------------------------
  function drawMap(id, values, ramp, unit, missing) {
    var feats = cfg.boundaries.features.filter(function (f) { return f.geometry && f.properties.level === "commune"; });
    var prov = cfg.boundaries.features.filter(function (f) { return f.geometry && f.properties.level === "province"; });
    var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    function rings(g) { return g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : []; }
    feats.forEach(function (f) { rings(f.geometry).forEach(function (p) { p[0].forEach(function (c) {
      x0 = Math.min(x0, c[0]); x1 = Math.max(x1, c[0]); y0 = Math.min(y0, c[1]); y1 = Math.max(y1, c[1]); }); }); });
    var k = Math.cos((y0 + y1) / 2 * Math.PI / 180), W = 400, H = Math.round(W * (y1 - y0) / ((x1 - x0) * k));
    function path(g) {
      return rings(g).map(function (poly) { return poly.map(function (ring) {
        return "M" + ring.map(function (c) { return ((c[0] - x0) / (x1 - x0) * W).toFixed(1) + "," + ((y1 - c[1]) / (y1 - y0) * H).toFixed(1); }).join("L") + "Z";
      }).join(""); }).join("");
    }
    var vals = Object.keys(values).map(function (c) { return values[c]; }).filter(function (v) { return v > 0; }).sort(function (a, b) { return a - b; });
    var breaks = [1, 2, 3, 4].map(function (i) { return vals.length ? vals[Math.floor(i * vals.length / 5)] : 0; });
    function cls(v) { var i = 0; while (i < 4 && v >= breaks[i]) i++; return i; }
    var NS = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "-2 -2 " + (W + 4) + " " + (H + 4)); svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", document.getElementById(id).previousElementSibling.textContent);
    feats.forEach(function (f) {
      var p = document.createElementNS(NS, "path"), v = values[f.properties.code];
      p.setAttribute("d", path(f.geometry)); p.setAttribute("class", "commune");
      p.setAttribute("fill", v > 0 ? ramp[cls(v)] : "#f2f2ef");
      var t = document.createElementNS(NS, "title");
      t.textContent = f.properties.name + ": " + (v > 0 ? nf.format(v) + " " + unit : missing);
      p.appendChild(t); svg.appendChild(p);
    });
    prov.forEach(function (f) {
      var p = document.createElementNS(NS, "path"); p.setAttribute("d", path(f.geometry)); p.setAttribute("class", "province");
      svg.appendChild(p);
    });
    var box = document.getElementById(id); box.appendChild(svg);
    var legend = document.createElement("div"); legend.className = "legend";
    var lows = [vals[0] || 0].concat(breaks);
    ramp.forEach(function (c, i) {
      var s = document.createElement("span"); s.innerHTML = '<i></i>'; s.firstChild.style.background = c;
      s.appendChild(document.createTextNode("≥ " + nf.format(lows[i])));
      legend.appendChild(s);
    });
    var u = document.createElement("span"); u.className = "unit"; u.textContent = unit; legend.appendChild(u);
    box.appendChild(legend);
  }

  Promise.all([crops, codes, auctions, prices, areas, outcomes]).then(function () {
    document.body.setAttribute("data-ready", "true");
  }, function (err) {
    var p = document.createElement("p"); p.className = "error"; p.textContent = T.error + " (" + err.message + ")";
    document.querySelector("main").prepend(p); document.body.setAttribute("data-ready", "error");
  });
})();
