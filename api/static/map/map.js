/* datso citizen auction map: MapLibre GL JS over datso's own vector tiles.
 * State lives in the URL hash (#z/lat/lon?status=..&commune=..&use=..&pmin=..&pmax=..&from=..&to=..&plot=..&lang=..)
 * so a view can be shared. All user-facing strings are in I18N below (Vietnamese first). */
(function () {
  "use strict";

  var CONFIG = JSON.parse(document.getElementById("datso-config").textContent);
  var ORIGIN = window.location.origin;
  var VN_OFFSET_MS = 7 * 3600 * 1000; // Vietnam time, no daylight saving

  var I18N = {
    vi: {
      title: "Bản đồ đấu giá đất", skip: "Bỏ qua đến ô tìm kiếm", searchLabel: "Tìm lô đất",
      searchPlaceholder: "Mã lô, địa chỉ, tờ 12 thửa 345…", searchButton: "Tìm", filtersButton: "Lớp & bộ lọc",
      layersHeading: "Lớp bản đồ", auctionHeading: "Lô đất đấu giá", statusLegend: "Trạng thái (chú giải)",
      commune: "Xã", landUse: "Mục đích sử dụng", all: "Tất cả", priceMin: "Giá từ (tỷ ₫)", priceMax: "đến (tỷ ₫)",
      dateFrom: "Đấu giá từ ngày", dateTo: "đến ngày", reset: "Xóa bộ lọc", share: "Chia sẻ",
      parcelsHeading: "Đất công", parcelLegend: "Tình trạng (chú giải)", parcelsHint: "Hiện từ mức phóng 10.",
      adminHeading: "Ranh giới hành chính", province: "Tỉnh", communeLine: "Xã",
      synthetic: "Dữ liệu mẫu mô phỏng, không phải sổ đăng ký thật.", close: "Đóng", mapLabel: "Bản đồ",
      layer_admin_units: "Ranh giới hành chính", layer_parcels: "Đất công", layer_auction_plots: "Lô đất đấu giá",
      layer_basemap: "Bản đồ nền", layer_imagery: "Ảnh nền",
      searching: "Đang tìm…", noResult: "Không tìm thấy kết quả cho “{q}”.", results: "{n} kết quả",
      searchError: "Không tìm được: {msg}", sheetParcel: "Tờ {s} thửa {p}",
      plotCode: "Mã lô", status: "Trạng thái", startingPrice: "Giá khởi điểm", deposit: "Tiền đặt trước",
      bidStep: "Bước giá", dossierFee: "Tiền hồ sơ", area: "Diện tích", purpose: "Mục đích sử dụng", term: "Thời hạn",
      address: "Địa chỉ", registration: "Thời gian đăng ký", registrationEnd: "Hạn đăng ký", auctionDate: "Ngày đấu giá",
      auctionPlace: "Địa điểm đấu giá", auctionForm: "Hình thức", organiser: "Tổ chức đấu giá",
      assetOwner: "Đơn vị có tài sản", resultPrice: "Giá trúng", linkedParcels: "Thửa đất liên quan",
      loading: "Đang tải…", loadError: "Không tải được thông tin lô đất ({msg}).", none: "—",
      tileError: "Không tải được dữ liệu bản đồ: {msg}", badState: "Bỏ qua giá trị không hợp lệ trong liên kết: {keys}",
      copied: "Đã sao chép liên kết của khung nhìn này.", shareText: "Liên kết: {url}",
      longTerm: "Lâu dài", depositPct: "{pct}% giá khởi điểm", parcelsItem: "Tờ {s} thửa {p}",
      badPrice: "Giá tối thiểu lớn hơn giá tối đa", badDates: "Ngày bắt đầu sau ngày kết thúc",
      synthetic_tag: "dữ liệu mô phỏng", openDetails: "Xem chi tiết", langSwitch: "English",
      managingBody: "Đơn vị quản lý", communeName: "Xã", oldCommune: "Mã xã cũ",
      layer_satellite: "Ảnh vệ tinh", upcomingHeading: "Sắp đấu giá", upcomingCount: "{n} lô đang hoặc sắp nhận hồ sơ",
      upcomingNone: "Không có lô nào khớp bộ lọc.", daysLeft: "còn {n} ngày", dayLeft: "còn 1 ngày", dueToday: "hạn hôm nay",
      deadline: "Hạn ĐK {d}", notice: "Thông báo", feed: "Nguồn tin Atom", hereTitle: "Thông tin tại điểm này",
      hereNothing: "Không có thửa đất, khu quy hoạch hay khu vực giá đất nào tại điểm này.",
      hereParcel: "Thửa đất", hereCommune: "Xã/phường hiện nay", hereAdmin: "Đơn vị hành chính", hereOldCommune: "Trước 01/07/2025",
      herePlan: "Quy hoạch sử dụng đất", herePrice: "Giá đất (đồng/m²)", hereAuction: "Lô đấu giá",
      hereGrowing: "Vùng trồng", hereUnavailable: "Chưa tra cứu được thông tin tại điểm này ({msg}).",
      filtersClose: "Xem bản đồ",
      imageryChoice: "Ảnh hiển thị", imageryTrue: "Ảnh màu thực", imageryNdvi: "Chỉ số thực vật NDVI",
      syntheticImage: "ảnh tổng hợp (synthetic)", ndviLow: "nước, đất trống", ndviHigh: "cây xanh tốt"
    },
    en: {
      title: "Land auction map", skip: "Skip to search", searchLabel: "Search plots",
      searchPlaceholder: "Plot code, address, sheet 12 parcel 345…", searchButton: "Search", filtersButton: "Layers & filters",
      layersHeading: "Map layers", auctionHeading: "Auction plots", statusLegend: "Status (legend)",
      commune: "Commune", landUse: "Land use", all: "All", priceMin: "Price from (bn ₫)", priceMax: "to (bn ₫)",
      dateFrom: "Auction from", dateTo: "to", reset: "Clear filters", share: "Share",
      parcelsHeading: "Public land", parcelLegend: "Status (legend)", parcelsHint: "Shown from zoom 10.",
      adminHeading: "Administrative boundaries", province: "Province", communeLine: "Commune",
      synthetic: "Synthetic sample data, not a real register.", close: "Close", mapLabel: "Map",
      layer_admin_units: "Administrative boundaries", layer_parcels: "Public land", layer_auction_plots: "Auction plots",
      layer_basemap: "Basemap", layer_imagery: "Imagery",
      searching: "Searching…", noResult: "Nothing found for “{q}”.", results: "{n} results",
      searchError: "Search failed: {msg}", sheetParcel: "Sheet {s}, parcel {p}",
      plotCode: "Plot code", status: "Status", startingPrice: "Starting price", deposit: "Deposit",
      bidStep: "Bid step", dossierFee: "Dossier fee", area: "Area", purpose: "Land use", term: "Term",
      address: "Address", registration: "Registration", registrationEnd: "Registration deadline", auctionDate: "Auction date",
      auctionPlace: "Auction place", auctionForm: "Auction form", organiser: "Organiser",
      assetOwner: "Asset owner", resultPrice: "Winning price", linkedParcels: "Linked parcels",
      loading: "Loading…", loadError: "Could not load the plot ({msg}).", none: "—",
      tileError: "Could not load map data: {msg}", badState: "Ignored invalid values in the link: {keys}",
      copied: "Link to this view copied.", shareText: "Link: {url}",
      longTerm: "Long-term", depositPct: "{pct}% of the starting price", parcelsItem: "Sheet {s}, parcel {p}",
      badPrice: "The minimum price is above the maximum price", badDates: "The start date is after the end date",
      synthetic_tag: "synthetic data", openDetails: "Details", langSwitch: "Tiếng Việt",
      managingBody: "Managing body", communeName: "Commune", oldCommune: "Old commune code",
      layer_satellite: "Satellite imagery", upcomingHeading: "Upcoming auctions", upcomingCount: "{n} plots open or opening for registration",
      upcomingNone: "No plot matches the filters.", daysLeft: "{n} days left", dayLeft: "1 day left", dueToday: "due today",
      deadline: "Deadline {d}", notice: "Notice", feed: "Atom feed", hereTitle: "What applies here",
      hereNothing: "No parcel, planning zone or land-price zone at this point.",
      hereParcel: "Parcel", hereCommune: "Commune/ward now", hereAdmin: "Administrative unit", hereOldCommune: "Before 1 July 2025",
      herePlan: "Land-use plan", herePrice: "Land price (VND/m²)", hereAuction: "Auction plot",
      hereGrowing: "Growing area", hereUnavailable: "Could not look up this point ({msg}).",
      filtersClose: "Show the map",
      imageryChoice: "Image shown", imageryTrue: "True colour", imageryNdvi: "Vegetation index (NDVI)",
      syntheticImage: "synthetic image", ndviLow: "water, bare soil", ndviHigh: "dense vegetation"
    }
  };

  var AUCTION = "auction_plots", PARCELS = "parcels", ADMIN = "admin_units";
  var LAYERS = {};
  CONFIG.layers.forEach(function (l) { LAYERS[l.id] = l; });
  var AUCTION_STATUSES = LAYERS[AUCTION].classes.map(function (c) { return c.code; });
  var PARCEL_STATUSES = LAYERS[PARCELS].classes.map(function (c) { return c.code; });
  var COMMUNES = {};
  CONFIG.communes.forEach(function (c) { COMMUNES[c.code] = c.name; });
  var LAND_USES = {};
  CONFIG.landUses.forEach(function (u) { LAND_USES[u.code] = u.name; });

  /* every registered raster as an image choice: its true colour and, with red and NIR bands, its NDVI (RdYlGn);
   * one MapLibre layer each ("imagery" is the first), one shown at a time under the vector layers */
  var RASTERS = [];
  (CONFIG.imagery || []).forEach(function (img) {
    RASTERS.push({ key: img.name, kind: "true", tiles: img.tiles, img: img });
    if (img.ndvi) RASTERS.push({ key: img.name + ".ndvi", kind: "ndvi", tiles: img.ndvi, img: img });
  });
  RASTERS.forEach(function (r, i) { r.layer = i === 0 ? "imagery" : "imagery-" + i; });
  function rasterByKey(key) { return RASTERS.filter(function (r) { return r.key === key; })[0] || null; }

  var state = {
    lang: CONFIG.lang === "en" ? "en" : "vi",
    statuses: AUCTION_STATUSES.slice(), parcelStatuses: PARCEL_STATUSES.slice(),
    visible: { admin_units: true, parcels: true, auction_plots: true, basemap: !!CONFIG.basemap, satellite: false,
               imagery: !!(CONFIG.imagery && CONFIG.imagery.length) },
    commune: "", use: "", pmin: null, pmax: null, from: "", to: "", plot: null, parcel: null, view: null,
    raster: RASTERS.length ? RASTERS[0].key : ""
  };

  function hasImagery() { return !!(CONFIG.imagery && CONFIG.imagery.length); }
  function t(key, vars) {
    var s = (I18N[state.lang] && I18N[state.lang][key]) || I18N.vi[key] || key;
    if (vars) Object.keys(vars).forEach(function (k) { s = s.split("{" + k + "}").join(String(vars[k])); });
    return s;
  }
  function el(id) { return document.getElementById(id); }
  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  /* -- formatting (Vietnamese conventions) ------------------------------------------------------------ */
  function groupDigits(intStr, sep) { return intStr.replace(/\B(?=(\d{3})+(?!\d))/g, sep); }
  function formatVND(v) {
    if (v === null || v === undefined || v === "") return t("none");
    var n = Math.round(Number(v));
    return (n < 0 ? "-" : "") + groupDigits(String(Math.abs(n)), ".") + " ₫";
  }
  function formatNumber(v, decimals) {
    var n = Number(v), fixed = n.toFixed(decimals === undefined ? 2 : decimals);
    var parts = fixed.split("."), frac = (parts[1] || "").replace(/0+$/, "");
    if (state.lang === "vi") return groupDigits(parts[0], ".") + (frac ? "," + frac : "");
    return groupDigits(parts[0], ",") + (frac ? "." + frac : "");
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function formatDate(v) {
    if (!v) return t("none");
    var s = String(v);
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
    if (m) return m[3] + "/" + m[2] + "/" + m[1];
    var d = new Date(s);
    if (isNaN(d.getTime())) return s;
    var vn = new Date(d.getTime() + VN_OFFSET_MS);
    return pad(vn.getUTCDate()) + "/" + pad(vn.getUTCMonth() + 1) + "/" + vn.getUTCFullYear();
  }
  function formatTime(v) {
    var d = new Date(String(v));
    if (isNaN(d.getTime())) return "";
    var vn = new Date(d.getTime() + VN_OFFSET_MS);
    return pad(vn.getUTCHours()) + ":" + pad(vn.getUTCMinutes());
  }
  function statusLabel(code) {
    var l = CONFIG.statusLabels[code];
    return l ? l[state.lang] : code;
  }
  /* a date (YYYY-MM-DD, Vietnam time) -> the UTC instant of its start */
  function vnDayStartUtc(dateStr, plusDays) {
    var p = dateStr.split("-").map(Number);
    var ms = Date.UTC(p[0], p[1] - 1, p[2] + (plusDays || 0)) - VN_OFFSET_MS;
    return new Date(ms).toISOString().replace(".000Z", "Z");
  }

  /* -- URL state ------------------------------------------------------------------------------------- */
  function readHash() {
    var h = window.location.hash.replace(/^#/, "");
    if (!h) return;
    var qi = h.indexOf("?"), pos = qi >= 0 ? h.slice(0, qi) : h, qs = qi >= 0 ? h.slice(qi + 1) : "";
    var bad = [];
    var p = pos.split("/");
    if (p.length === 3 && p[0] !== "") {
      var z = Number(p[0]), lat = Number(p[1]), lon = Number(p[2]);
      if (isFinite(z) && isFinite(lat) && isFinite(lon) && z >= 0 && z <= 22 && Math.abs(lat) <= 85 && Math.abs(lon) <= 180) {
        state.view = { zoom: z, center: [lon, lat] };
      } else { bad.push("z/lat/lon"); }
    }
    var params = new URLSearchParams(qs);
    applyParams(params, bad);
    if (bad.length) showNotice(t("badState", { keys: bad.join(", ") }), "info");
  }
  function applyParams(params, bad) {
    if (params.has("status")) {
      var st = params.get("status") ? params.get("status").split(",") : [];
      if (st.every(function (s) { return AUCTION_STATUSES.indexOf(s) >= 0; })) state.statuses = st; else bad.push("status");
    }
    if (params.has("pstatus")) {
      var ps = params.get("pstatus") ? params.get("pstatus").split(",") : [];
      if (ps.every(function (s) { return PARCEL_STATUSES.indexOf(s) >= 0; })) state.parcelStatuses = ps; else bad.push("pstatus");
    }
    var c = params.get("commune");
    if (c) { if (COMMUNES[c]) state.commune = c; else bad.push("commune"); }
    var u = params.get("use");
    if (u) { if (LAND_USES[u]) state.use = u; else bad.push("use"); }
    ["pmin", "pmax"].forEach(function (k) {
      var v = params.get(k);
      if (v) { if (/^\d{1,16}$/.test(v)) state[k] = Number(v); else bad.push(k); }
    });
    ["from", "to"].forEach(function (k) {
      var v = params.get(k);
      if (v) { if (/^\d{4}-\d{2}-\d{2}$/.test(v) && !isNaN(Date.parse(v))) state[k] = v; else bad.push(k); }
    });
    var plot = params.get("plot");
    if (plot) { if (/^\d{1,18}$/.test(plot)) state.plot = plot; else bad.push("plot"); }
    var parcel = params.get("parcel");
    if (parcel) { if (/^\d{1,18}$/.test(parcel)) state.parcel = parcel; else bad.push("parcel"); }
    var lang = params.get("lang");
    if (lang === "en" || lang === "vi") state.lang = lang;
    var hide = params.get("hide");
    if (hide) hide.split(",").forEach(function (k) { if (k in state.visible) state.visible[k] = false; });
    var img = params.get("img");
    if (img) { if (rasterByKey(img)) state.raster = img; else bad.push("img"); }
    var show = params.get("show");
    if (show) show.split(",").forEach(function (k) { if (k in state.visible) state.visible[k] = true; });
  }
  function stateParams() {
    var q = new URLSearchParams();
    if (state.statuses.length !== AUCTION_STATUSES.length) q.set("status", state.statuses.join(","));
    if (state.parcelStatuses.length !== PARCEL_STATUSES.length) q.set("pstatus", state.parcelStatuses.join(","));
    if (state.commune) q.set("commune", state.commune);
    if (state.use) q.set("use", state.use);
    if (state.pmin !== null) q.set("pmin", String(state.pmin));
    if (state.pmax !== null) q.set("pmax", String(state.pmax));
    if (state.from) q.set("from", state.from);
    if (state.to) q.set("to", state.to);
    var hidden = Object.keys(state.visible).filter(function (k) {
      return !state.visible[k] && (k !== "basemap" || CONFIG.basemap) && (k !== "imagery" || hasImagery()) &&
        k !== "satellite";
    });
    if (hidden.length) q.set("hide", hidden.join(","));
    if (state.visible.satellite && CONFIG.satellite) q.set("show", "satellite");
    if (RASTERS.length && state.raster !== RASTERS[0].key) q.set("img", state.raster);
    if (state.plot) q.set("plot", state.plot);
    if (state.parcel) q.set("parcel", state.parcel);
    if (state.lang !== "vi") q.set("lang", state.lang);
    return q;
  }
  function writeHash() {
    if (!map) return;
    var c = map.getCenter(), z = map.getZoom();
    var qs = stateParams().toString();
    var h = "#" + z.toFixed(2) + "/" + c.lat.toFixed(5) + "/" + c.lng.toFixed(5) + (qs ? "?" + qs : "");
    if (h !== window.location.hash) history.replaceState(null, "", window.location.pathname + window.location.search + h);
  }

  /* -- tile URLs (server-side filters) and style filters (client-side) --------------------------------- */
  /* Filters: status and price (fields carried at every zoom) are style expressions; commune and land use are
   * tile query parameters (server-side); the auction-date range, a field tiles carry only from the detail zoom,
   * is resolved through the features API into the ids of the matching plots. */
  function tileUrl(layerId) {
    var q = new URLSearchParams();
    if (layerId === AUCTION) {
      if (state.commune) q.set("commune_code", state.commune);
      if (state.use) q.set("land_use_code", state.use);
    } else if (layerId === PARCELS) {
      if (state.commune) q.set("commune_code", state.commune);
      if (state.use) q.set("land_use_codes", state.use);
    }
    var qs = q.toString();
    return ORIGIN + "/collections/" + layerId + "/tiles/WebMercatorQuad/{z}/{x}/{y}" + (qs ? "?" + qs : "");
  }
  var dateIds = null, dateKey = "", dateSeq = 0;   // ids of the plots auctioned in [from, to]
  function auctionFilter() {
    var f = ["all", ["in", ["get", "status"], ["literal", state.statuses]]];
    if (state.pmin !== null) f.push([">=", ["to-number", ["get", "starting_price_vnd"]], state.pmin]);
    if (state.pmax !== null) f.push(["<=", ["to-number", ["get", "starting_price_vnd"]], state.pmax]);
    if ((state.from || state.to) && dateIds) f.push(["in", ["id"], ["literal", dateIds]]);
    return f;
  }
  function datetimeParam() {
    var a = state.from ? vnDayStartUtc(state.from, 0) : "..";
    var b = state.to ? new Date(Date.parse(vnDayStartUtc(state.to, 1)) - 1000).toISOString().replace(".000Z", "Z") : "..";
    return a + "/" + b;
  }
  function refreshDateIds() {
    if (!state.from && !state.to) { dateIds = null; dateKey = ""; applyStyleFilters(); return; }
    var key = datetimeParam();
    if (key === dateKey && dateIds) { applyStyleFilters(); return; }
    var seq = ++dateSeq, ids = [];
    window.datsoDatesReady = false;
    function page(url, n) {
      return fetch(url, { headers: { Accept: "application/geo+json" } }).then(function (r) {
        return r.json().then(function (b) { if (!r.ok) throw new Error(b.detail || r.status); return b; });
      }).then(function (b) {
        (b.features || []).forEach(function (f) { ids.push(Number(f.id)); });
        var next = (b.links || []).filter(function (l) { return l.rel === "next"; })[0];
        if (next && n < 20) return page(next.href, n + 1);
        return null;
      });
    }
    var q = new URLSearchParams({ datetime: key, skipGeometry: "true", properties: "status", limit: "10000" });
    page(ORIGIN + "/collections/" + AUCTION + "/items?" + q.toString(), 0).then(function () {
      if (seq !== dateSeq) return;
      dateIds = ids; dateKey = key; applyStyleFilters(); window.datsoDatesReady = true;
    }).catch(function (e) { if (seq === dateSeq) showNotice(t("tileError", { msg: e.message })); });
  }
  function parcelFilter() { return ["in", ["get", "status"], ["literal", state.parcelStatuses]]; }
  function colourExpr(layer) {
    var e = ["match", ["get", layer.by]];
    layer.classes.forEach(function (c) { e.push(c.code, c.colour); });
    e.push(layer.default);
    return e;
  }

  function buildStyle() {
    /* the offline basemap: sea, land and borders of Vietnam and its neighbours (Natural Earth, vendored) */
    var sources = { ne: { type: "geojson", data: ORIGIN + "/static/vendor/natural-earth/countries-vn.geojson",
                          attribution: "Natural Earth" } };
    var nameField = state.lang === "en" ? "name_en" : "name_vi";
    var layers = [
      { id: "background", type: "background", paint: { "background-color": "#b9d9eb" } },
      { id: "ne-land", type: "fill", source: "ne",
        paint: { "fill-color": ["case", ["get", "home"], "#f2efe6", "#e3dfd3"] } },
      { id: "ne-coastline", type: "line", source: "ne",
        paint: { "line-color": "#a39c88", "line-width": ["interpolate", ["linear"], ["zoom"], 5, 0.6, 12, 1.4] } },
      { id: "ne-label", type: "symbol", source: "ne", maxzoom: 10, filter: ["!", ["get", "home"]],
        layout: { "text-field": ["get", nameField], "text-font": ["Noto Sans Regular"], "text-size": 13,
                  "text-transform": "uppercase", "text-letter-spacing": 0.15 },
        paint: { "text-color": "#8a8372", "text-halo-color": "#e3dfd3", "text-halo-width": 1.5 } }
    ];
    if (CONFIG.basemap) {
      sources.basemap = { type: "raster", tiles: [CONFIG.basemap.url], tileSize: 256, maxzoom: CONFIG.basemap.maxzoom,
                          attribution: CONFIG.basemap.attribution || "" };
      layers.push({ id: "basemap", type: "raster", source: "basemap",
                    layout: { visibility: state.visible.basemap ? "visible" : "none" } });
    }
    RASTERS.forEach(function (r) {
      sources[r.layer] = { type: "raster", tiles: r.tiles, tileSize: 256, bounds: r.img.bounds,
                           minzoom: r.img.minzoom, maxzoom: r.img.maxzoom,
                           attribution: r.img.synthetic ? t("syntheticImage") : "" };
      layers.push({ id: r.layer, type: "raster", source: r.layer, layout: { visibility: rasterVis(r) } });
    });
    if (CONFIG.satellite) {
      sources.satellite = { type: "raster", tiles: [CONFIG.satellite.url], tileSize: 256, maxzoom: CONFIG.satellite.maxzoom,
                            attribution: CONFIG.satellite.attribution || "" };
      layers.push({ id: "satellite", type: "raster", source: "satellite",
                    layout: { visibility: state.visible.satellite ? "visible" : "none" } });
    }
    [ADMIN, PARCELS, AUCTION].forEach(function (id) {
      var l = LAYERS[id];
      sources[id] = { type: "vector", tiles: [tileUrl(id)], minzoom: l.minzoom,
                      maxzoom: Math.min(l.maxzoom, CONFIG.tileMaxzoom) };
    });
    var adm = LAYERS[ADMIN], par = LAYERS[PARCELS], auc = LAYERS[AUCTION];
    function vis(id) { return state.visible[id] ? "visible" : "none"; }
    /* one label a commune, at a point inside it (tiles would cut a polygon into pieces, each labelled) */
    sources["commune-labels"] = { type: "geojson", data: { type: "FeatureCollection", features:
      CONFIG.communes.filter(function (c) { return c.label; }).map(function (c) {
        return { type: "Feature", properties: { code: c.code, name: c.name }, geometry: { type: "Point", coordinates: c.label } };
      }) } };
    var provinceFilter = ["all", ["==", ["get", "scheme"], "2025"], ["==", ["get", "level"], "province"]];
    var halo = { "text-halo-color": "#ffffff", "text-halo-width": 1.6 };
    layers.push(
      { id: "admin-province-fill", type: "fill", source: ADMIN, "source-layer": ADMIN, filter: provinceFilter,
        paint: { "fill-color": "#fbfaf4", "fill-opacity": provinceOpacity() } },
      { id: "parcels-fill", type: "fill", source: PARCELS, "source-layer": PARCELS, minzoom: par.minzoom,
        filter: parcelFilter(), layout: { visibility: vis(PARCELS) },
        paint: { "fill-color": colourExpr(par), "fill-opacity": 0.35 } },
      { id: "parcels-line", type: "line", source: PARCELS, "source-layer": PARCELS, minzoom: 13,
        filter: parcelFilter(), layout: { visibility: vis(PARCELS) },
        paint: { "line-color": "#546e7a", "line-width": 0.5, "line-opacity": 0.7 } },
      { id: "parcels-selected", type: "line", source: PARCELS, "source-layer": PARCELS, minzoom: par.minzoom,
        filter: ["==", ["id"], -1], layout: { visibility: vis(PARCELS) },
        paint: { "line-color": "#000000", "line-width": 2.5 } },
      { id: "admin-commune", type: "line", source: ADMIN, "source-layer": ADMIN,
        filter: ["all", ["==", ["get", "scheme"], "2025"], ["==", ["get", "level"], "commune"]],
        layout: { visibility: vis(ADMIN) },
        paint: { "line-color": adm.classes.filter(function (c) { return c.code === "commune"; })[0].colour,
                 "line-width": 1.2, "line-dasharray": [3, 2] } },
      { id: "admin-province", type: "line", source: ADMIN, "source-layer": ADMIN,
        filter: ["all", ["==", ["get", "scheme"], "2025"], ["==", ["get", "level"], "province"]],
        layout: { visibility: vis(ADMIN) },
        paint: { "line-color": adm.classes.filter(function (c) { return c.code === "province"; })[0].colour,
                 "line-width": 2.5 } },
      { id: "auction-fill", type: "fill", source: AUCTION, "source-layer": AUCTION, minzoom: auc.minzoom,
        filter: auctionFilter(), layout: { visibility: vis(AUCTION) },
        paint: { "fill-color": colourExpr(auc), "fill-opacity": 0.8 } },
      { id: "auction-line", type: "line", source: AUCTION, "source-layer": AUCTION, minzoom: auc.minzoom,
        filter: auctionFilter(), layout: { visibility: vis(AUCTION), "line-join": "round" },
        paint: { "line-color": colourExpr(auc),
                 "line-width": ["interpolate", ["linear"], ["zoom"], 8, 5, 12, 4, 14, 2, 16, 1.5] } },
      { id: "auction-selected", type: "line", source: AUCTION, "source-layer": AUCTION, minzoom: auc.minzoom,
        filter: ["==", ["id"], -1], layout: { visibility: vis(AUCTION) },
        paint: { "line-color": "#000000", "line-width": 3 } },
      /* labels: communes and wards by name, then plot codes and parcel numbers (sheet/parcel) close up */
      { id: "admin-commune-label", type: "symbol", source: "commune-labels",
        layout: { visibility: vis(ADMIN), "text-field": ["get", "name"], "text-font": ["Noto Sans Bold"],
                  "text-size": ["interpolate", ["linear"], ["zoom"], 9, 11, 14, 15], "text-max-width": 8,
                  "symbol-placement": "point", "text-padding": 6 },
        paint: { "text-color": "#3c4a42", "text-halo-color": "#fbfaf4", "text-halo-width": 1.8,
                 "text-opacity": ["interpolate", ["linear"], ["zoom"], 15, 1, 16, 0.55] } },
      { id: "parcels-label", type: "symbol", source: PARCELS, "source-layer": PARCELS,
        minzoom: Math.max(par.detail_zoom || 15, 16), filter: parcelFilter(),
        layout: { visibility: vis(PARCELS), "text-field": ["concat", ["to-string", ["get", "map_sheet"]], "/",
                                                                       ["to-string", ["get", "parcel_no"]]],
                  "text-font": ["Noto Sans Regular"], "text-size": 11 },
        paint: Object.assign({ "text-color": "#37474f" }, halo) },
      { id: "auction-label", type: "symbol", source: AUCTION, "source-layer": AUCTION, minzoom: 14,
        filter: auctionFilter(), layout: { visibility: vis(AUCTION), "text-field": ["get", "plot_code"],
          "text-font": ["Noto Sans Bold"], "text-size": 11, "text-offset": [0, -1.2] },
        paint: Object.assign({ "text-color": "#1b4332" }, halo) }
    );
    return { version: 8, glyphs: ORIGIN + "/static/vendor/glyphs/{fontstack}/{range}.pbf",
             sources: sources, layers: layers };
  }

  /* a raster is drawn when imagery is on and it is the chosen image; the province's pale fill (a plain
   * background for the plots) then steps aside so the image shows through */
  function rasterVis(r) { return state.visible.imagery && state.raster === r.key ? "visible" : "none"; }
  function imageryShown() { return hasImagery() && state.visible.imagery && !!rasterByKey(state.raster); }
  function provinceOpacity() { return imageryShown() ? 0 : 0.85; }

  var map = null;
  var AUCTION_LAYER_IDS = ["auction-fill", "auction-line"];
  var AUCTION_FILTERED = ["auction-fill", "auction-line", "auction-label"];

  function applyStyleFilters() {
    if (!map) return;
    AUCTION_FILTERED.forEach(function (id) { map.setFilter(id, auctionFilter()); });
    ["parcels-fill", "parcels-line", "parcels-label"].forEach(function (id) { map.setFilter(id, parcelFilter()); });
    renderUpcoming();
  }
  function applyTileFilters() {
    if (!map) return;
    [AUCTION, PARCELS].forEach(function (id) {
      var src = map.getSource(id), url = tileUrl(id);
      if (src && src.tiles && src.tiles[0] !== url) src.setTiles([url]);
    });
  }
  function applyVisibility() {
    if (!map) return;
    var groups = { admin_units: ["admin-commune", "admin-province", "admin-commune-label"],
                   parcels: ["parcels-fill", "parcels-line", "parcels-selected", "parcels-label"],
                   auction_plots: ["auction-fill", "auction-line", "auction-selected", "auction-label"],
                   basemap: ["basemap"], satellite: ["satellite"] };
    Object.keys(groups).forEach(function (k) {
      groups[k].forEach(function (id) {
        if (map.getLayer(id)) map.setLayoutProperty(id, "visibility", state.visible[k] ? "visible" : "none");
      });
    });
    RASTERS.forEach(function (r) { if (map.getLayer(r.layer)) map.setLayoutProperty(r.layer, "visibility", rasterVis(r)); });
    syncImageryControls();
    if (map.getLayer("admin-province-fill")) map.setPaintProperty("admin-province-fill", "fill-opacity", provinceOpacity());
  }

  /* -- notices --------------------------------------------------------------------------------------- */
  var noticeTimer = null;
  function showNotice(msg, kind) {
    var n = el("notice");
    n.textContent = msg;
    n.className = "notice" + (kind === "info" ? " info" : "");
    n.hidden = false;
    if (noticeTimer) clearTimeout(noticeTimer);
    noticeTimer = setTimeout(function () { n.hidden = true; }, kind === "info" ? 6000 : 12000);
  }

  /* -- sidebar: layer switcher, legend + status filters, attribute filters ----------------------------- */
  function checkbox(id, text, checked, swatch, onChange) {
    var label = document.createElement("label");
    var input = document.createElement("input");
    input.type = "checkbox"; input.id = id; input.checked = checked;
    input.addEventListener("change", function () { onChange(input.checked); });
    label.appendChild(input);
    if (swatch) {
      var s = document.createElement("span");
      s.className = "swatch"; s.style.background = swatch;
      s.setAttribute("aria-hidden", "true");
      label.appendChild(s);
    }
    var span = document.createElement("span");
    span.textContent = text;
    label.appendChild(span);
    return label;
  }
  function renderSidebar() {
    var ls = el("layer-switcher");
    ls.innerHTML = "";
    var keys = [AUCTION, PARCELS, ADMIN].concat(hasImagery() ? ["imagery"] : []).concat(CONFIG.basemap ? ["basemap"] : [])
      .concat(CONFIG.satellite ? ["satellite"] : []);
    keys.forEach(function (k) {
      ls.appendChild(checkbox("layer-" + k, t("layer_" + k), state.visible[k], null, function (on) {
        state.visible[k] = on; applyVisibility(); writeHash();
      }));
      if (k === "imagery") ls.appendChild(imageryChoices());
    });
    var sf = el("status-filter");
    Array.prototype.slice.call(sf.querySelectorAll("label")).forEach(function (n) { n.remove(); });
    LAYERS[AUCTION].classes.forEach(function (c) {
      sf.appendChild(checkbox("st-" + c.code, c.label[state.lang], state.statuses.indexOf(c.code) >= 0, c.colour,
        function (on) {
          state.statuses = AUCTION_STATUSES.filter(function (s) {
            return s === c.code ? on : state.statuses.indexOf(s) >= 0;
          });
          applyStyleFilters(); writeHash();
        }));
    });
    var pf = el("parcel-filter");
    Array.prototype.slice.call(pf.querySelectorAll("label")).forEach(function (n) { n.remove(); });
    LAYERS[PARCELS].classes.forEach(function (c) {
      pf.appendChild(checkbox("pst-" + c.code, c.label[state.lang], state.parcelStatuses.indexOf(c.code) >= 0, c.colour,
        function (on) {
          state.parcelStatuses = PARCEL_STATUSES.filter(function (s) {
            return s === c.code ? on : state.parcelStatuses.indexOf(s) >= 0;
          });
          applyStyleFilters(); writeHash();
        }));
    });
  }
  /* the image choices: a radio per raster and rendering (true colour, NDVI), the synthetic ones labelled so */
  function rasterLabel(r) {
    var multi = (CONFIG.imagery || []).length > 1;
    return t(r.kind === "ndvi" ? "imageryNdvi" : "imageryTrue") + (multi ? " – " + r.img.name : "");
  }
  function imageryChoices() {
    var fs = document.createElement("fieldset");
    fs.className = "legend imagery-choices";
    fs.id = "imagery-choices";
    var lg = document.createElement("legend");
    lg.textContent = t("imageryChoice");
    fs.appendChild(lg);
    RASTERS.forEach(function (r) {
      var label = document.createElement("label"), input = document.createElement("input");
      input.type = "radio"; input.name = "imagery-choice"; input.value = r.key;
      input.id = "img-" + r.key.replace(/[^a-z0-9_-]/gi, "-");
      input.checked = state.raster === r.key;
      input.addEventListener("change", function () {
        if (!input.checked) return;
        state.raster = r.key; applyVisibility(); writeHash();
      });
      label.appendChild(input);
      var span = document.createElement("span");
      span.textContent = rasterLabel(r);
      label.appendChild(span);
      if (r.img.synthetic) {
        var tag = document.createElement("span");
        tag.className = "synthetic-tag";
        tag.textContent = t("syntheticImage");
        label.appendChild(tag);
      }
      fs.appendChild(label);
    });
    var leg = document.createElement("div");
    leg.className = "ndvi-legend"; leg.id = "ndvi-legend";
    leg.innerHTML = '<span class="ndvi-ramp" aria-hidden="true"></span><span class="ndvi-ends"><span>−1 · ' +
      escapeHtml(t("ndviLow")) + "</span><span>" + escapeHtml(t("ndviHigh")) + " · 1</span></span>";
    fs.appendChild(leg);
    syncImageryControls(fs);
    return fs;
  }
  /* the choices are usable while imagery is on; the NDVI colour ramp shows while NDVI is drawn */
  function syncImageryControls(fs) {
    fs = fs || el("imagery-choices");
    if (!fs) return;
    fs.disabled = !state.visible.imagery;
    var cur = rasterByKey(state.raster), leg = fs.querySelector(".ndvi-legend");
    if (leg) leg.hidden = !(cur && cur.kind === "ndvi" && state.visible.imagery);
  }
  function fillSelects() {
    var cs = el("f-commune");
    CONFIG.communes.forEach(function (c) {
      var o = document.createElement("option"); o.value = c.code; o.textContent = c.name + " (" + c.code + ")"; cs.appendChild(o);
    });
    var us = el("f-use");
    CONFIG.landUses.forEach(function (u) {
      var o = document.createElement("option"); o.value = u.code; o.textContent = u.code + " – " + u.name; us.appendChild(o);
    });
  }
  function syncInputs() {
    el("f-commune").value = state.commune;
    el("f-use").value = state.use;
    el("f-pmin").value = state.pmin !== null ? String(state.pmin / 1e9) : "";
    el("f-pmax").value = state.pmax !== null ? String(state.pmax / 1e9) : "";
    el("f-from").value = state.from;
    el("f-to").value = state.to;
  }
  function readInputs() {
    var pmin = el("f-pmin").value, pmax = el("f-pmax").value;
    var next = {
      commune: el("f-commune").value, use: el("f-use").value,
      pmin: pmin === "" ? null : Math.round(Number(pmin) * 1e9), pmax: pmax === "" ? null : Math.round(Number(pmax) * 1e9),
      from: el("f-from").value, to: el("f-to").value
    };
    if ((next.pmin !== null && !(next.pmin >= 0)) || (next.pmax !== null && !(next.pmax >= 0))) return;
    if (next.pmin !== null && next.pmax !== null && next.pmin > next.pmax) { showNotice(t("badPrice")); return; }
    if (next.from && next.to && next.from > next.to) { showNotice(t("badDates")); return; }
    Object.keys(next).forEach(function (k) { state[k] = next[k]; });
    renderUpcoming();
    applyStyleFilters(); applyTileFilters(); refreshDateIds(); writeHash();
  }

  function applyLanguage() {
    document.documentElement.lang = state.lang;
    document.querySelectorAll("[data-i18n]").forEach(function (n) { n.textContent = t(n.getAttribute("data-i18n")); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach(function (n) {
      n.setAttribute("placeholder", t(n.getAttribute("data-i18n-placeholder")));
    });
    document.querySelectorAll("[data-i18n-aria]").forEach(function (n) {
      n.setAttribute("aria-label", t(n.getAttribute("data-i18n-aria")));
    });
    var sw = el("lang-switch");
    sw.textContent = t("langSwitch");
    sw.setAttribute("lang", state.lang === "vi" ? "en" : "vi");
    el("map").setAttribute("aria-label", t("mapLabel"));
    document.title = t("title") + " — datso";
    renderSidebar();
    renderUpcoming();
    if (map && map.getLayer("ne-label")) map.setLayoutProperty("ne-label", "text-field", ["get", state.lang === "en" ? "name_en" : "name_vi"]);
    if (state.plot && !el("detail").hidden) openPlot(state.plot, false);
    if (state.parcel && !el("detail").hidden) openParcel(state.parcel, false);
  }

  /* -- search ---------------------------------------------------------------------------------------- */
  function isPhone() { return window.matchMedia("(max-width: 700px)").matches; }
  /* room left for the detail panel (right side on desktop, bottom sheet on phones) */
  function viewPadding(withPanel) {
    var pad = { top: 50, left: 50, right: 50, bottom: 50 };
    if (!withPanel) return pad;
    var panel = el("detail");
    if (isPhone()) pad.bottom = Math.round(map.getContainer().offsetHeight * 0.55) + 20;   // the sheet's max height
    else pad.right = (panel.offsetWidth || 340) + 40;
    return pad;
  }
  function fitTo(bbox, maxZoom, withPanel) {
    var b = [[bbox[0], bbox[1]], [bbox[2], bbox[3]]];
    map.fitBounds(b, { padding: viewPadding(withPanel), maxZoom: maxZoom || 17, duration: 800 });
  }
  function runSearch(q) {
    var box = el("search-box"), status = el("search-status"), list = el("search-results");
    box.hidden = false; list.innerHTML = ""; status.textContent = t("searching");
    var url = ORIGIN + "/search?q=" + encodeURIComponent(q) + "&layers=" + encodeURIComponent(CONFIG.searchLayers) +
      "&limit=10&lang=" + state.lang;
    fetch(url, { headers: { Accept: "application/json" } }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (res) {
      if (!res.ok) { status.textContent = t("searchError", { msg: res.body.detail || res.body.title }); return; }
      var feats = res.body.features || [];
      if (!feats.length) { status.textContent = t("noResult", { q: q }); return; }
      status.textContent = t("results", { n: feats.length });
      feats.forEach(function (f, i) {
        var li = document.createElement("li"), b = document.createElement("button");
        b.type = "button";
        var p = f.properties, extra = p.address ? " — " + p.address : "";
        b.innerHTML = escapeHtml(p.label) + escapeHtml(extra) + '<span class="kind">' + escapeHtml(p.layer_title) + "</span>";
        b.addEventListener("click", function () { chooseResult(f); });
        b.addEventListener("keydown", function (ev) {
          var items = list.querySelectorAll("button");
          if (ev.key === "ArrowDown" && items[i + 1]) { ev.preventDefault(); items[i + 1].focus(); }
          if (ev.key === "ArrowUp") { ev.preventDefault(); (items[i - 1] || el("search-input")).focus(); }
        });
        li.appendChild(b); list.appendChild(li);
      });
      if (feats.length === 1 || feats[0].properties.exact) chooseResult(feats[0], feats.length > 1);
    }).catch(function (e) { status.textContent = t("searchError", { msg: String(e) }); });
  }
  function chooseResult(f, keepList) {
    if (!keepList) el("search-box").hidden = true;
    var layer = f.properties.layer;
    if (layer === AUCTION) {
      state.visible[AUCTION] = true; applyVisibility();
      openPlot(String(f.id), true);
      fitTo(f.bbox, 17, true);
    } else {
      if (layer === PARCELS) {
        state.visible[PARCELS] = true; applyVisibility();
        openParcel(String(f.id), true);
        fitTo(f.bbox, 18, true);
        return;
      }
      fitTo(f.bbox, layer === ADMIN ? 13 : 17);
    }
  }

  /* -- detail panel ---------------------------------------------------------------------------------- */
  var lastFocus = null, detailSeq = 0;
  /* a status badge whose text stays readable on light colours (WCAG relative luminance) */
  function badge(colour, text) {
    var m = /^#([0-9a-f]{6})$/i.exec(colour || ""), dark = false;
    if (m) {
      var lum = [0, 2, 4].map(function (i) {
        var c = parseInt(m[1].substr(i, 2), 16) / 255;
        return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
      });
      dark = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2] > 0.2;   // the better of the two contrasts
    }
    /* no style attribute (the page's CSP allows no inline style): paintBadges() sets the colours */
    return '<span class="status-badge' + (dark ? " dark" : "") + '" data-colour="' + escapeHtml(colour || "") + '">' +
      escapeHtml(text) + "</span>";
  }
  function paintBadges(root) {
    root.querySelectorAll(".status-badge[data-colour]").forEach(function (b) { b.style.background = b.dataset.colour; });
  }
  function row(label, value, cls) {
    return "<dt>" + escapeHtml(label) + "</dt><dd" + (cls ? ' class="' + cls + '"' : "") + ">" + value + "</dd>";
  }
  function selectOn(plotId, parcelId) {
    if (!map) return;
    if (map.getLayer("auction-selected")) map.setFilter("auction-selected", ["==", ["id"], plotId === null ? -1 : Number(plotId)]);
    if (map.getLayer("parcels-selected")) map.setFilter("parcels-selected", ["==", ["id"], parcelId === null ? -1 : Number(parcelId)]);
  }
  function openParcel(id, moveFocus) {
    state.parcel = String(id); state.plot = null;
    el("detail").classList.remove("here");
    var seq = ++detailSeq;
    var panel = el("detail"), body = el("detail-body"), title = el("detail-title");
    if (panel.hidden) lastFocus = document.activeElement;
    panel.hidden = false;
    title.textContent = t("loading"); body.innerHTML = "";
    selectOn(null, id);
    writeHash();
    fetch(ORIGIN + "/collections/" + PARCELS + "/items/" + encodeURIComponent(id),
          { headers: { Accept: "application/geo+json, application/json" } })
      .then(function (r) {
        return r.json().then(function (b) { if (!r.ok) throw new Error(b.detail || b.title || r.status); return b; });
      })
      .then(function (feat) { if (seq === detailSeq) renderParcel(feat); })
      .catch(function (e) { if (seq === detailSeq) { title.textContent = t("loadError", { msg: e.message }); } });
    if (moveFocus) title.focus();
  }
  function renderParcel(feat) {
    var p = feat.properties || {};
    var colour = (LAYERS[PARCELS].classes.filter(function (c) { return c.code === p.status; })[0] || {}).colour || "#777";
    el("detail-title").textContent = t("parcelsItem", { s: p.map_sheet, p: p.parcel_no });
    var uses = (p.land_use_codes || []).map(function (c) { return c + " – " + (LAND_USES[c] || ""); }).join("; ");
    var html = "<dl>" +
      row(t("status"), badge(colour, statusLabel(p.status))) +
      row(t("address"), escapeHtml(p.address || t("none"))) +
      row(t("area"), '<span class="parcel-area">' + escapeHtml(formatNumber(p.area_m2) + " m²") + "</span>") +
      row(t("purpose"), escapeHtml(uses || t("none"))) +
      row(t("communeName"), escapeHtml((COMMUNES[p.commune_code] || "") + " (" + p.commune_code + ")")) +
      (p.old_commune_code ? row(t("oldCommune"), escapeHtml(p.old_commune_code)) : "") +
      row(t("managingBody"), escapeHtml(p.managing_body || t("none"))) +
      "</dl>";
    if (p.synthetic) html += '<p class="hint">(' + escapeHtml(t("synthetic_tag")) + ")</p>";
    el("detail-body").innerHTML = html;
    paintBadges(el("detail-body"));
  }
  function openPlot(id, moveFocus) {
    state.plot = String(id); state.parcel = null;
    el("detail").classList.remove("here");
    var seq = ++detailSeq;
    var panel = el("detail"), body = el("detail-body"), title = el("detail-title");
    if (panel.hidden) lastFocus = document.activeElement;
    panel.hidden = false;
    title.textContent = t("loading"); body.innerHTML = "";
    selectOn(id, null);
    writeHash();
    fetch(ORIGIN + "/collections/" + AUCTION + "/items/" + encodeURIComponent(id),
          { headers: { Accept: "application/geo+json, application/json" } })
      .then(function (r) {
        return r.json().then(function (b) { if (!r.ok) throw new Error(b.detail || b.title || r.status); return b; });
      })
      .then(function (feat) { if (seq === detailSeq) renderPlot(feat); })
      .catch(function (e) { if (seq === detailSeq) { title.textContent = t("loadError", { msg: e.message }); } });
    if (moveFocus) title.focus();
  }
  function renderPlot(feat) {
    var p = feat.properties || {};
    var colour = (LAYERS[AUCTION].classes.filter(function (c) { return c.code === p.status; })[0] || {}).colour || "#777";
    el("detail-title").textContent = p.plot_code || ("#" + feat.id);
    var use = p.land_use_code ? p.land_use_code + " – " + (LAND_USES[p.land_use_code] || "") : t("none");
    var term = p.term === "long_term" ? t("longTerm") : (p.term || t("none"));
    var reg = p.registration_start || p.registration_end
      ? formatDate(p.registration_start) + " – " + formatDate(p.registration_end) : t("none");
    var auctionAt = p.auction_date ? formatDate(p.auction_date) + (formatTime(p.auction_date) ? " " + formatTime(p.auction_date) : "") : t("none");
    var html = "<dl>" +
      row(t("status"), badge(colour, statusLabel(p.status))) +
      row(t("startingPrice"), escapeHtml(formatVND(p.starting_price_vnd)), "price") +
      row(t("deposit"), escapeHtml(formatVND(p.deposit_vnd)) +
          (p.deposit_pct !== undefined && p.deposit_pct !== null ? " (" + escapeHtml(t("depositPct", { pct: formatNumber(p.deposit_pct) })) + ")" : "")) +
      (p.bid_step_vnd ? row(t("bidStep"), escapeHtml(formatVND(p.bid_step_vnd))) : "") +
      (p.result_price_vnd ? row(t("resultPrice"), escapeHtml(formatVND(p.result_price_vnd)), "price") : "") +
      row(t("area"), escapeHtml(formatNumber(p.area_m2) + " m²")) +
      row(t("purpose"), escapeHtml(use)) +
      row(t("term"), escapeHtml(term)) +
      row(t("address"), escapeHtml(p.address || t("none"))) +
      row(t("registration"), escapeHtml(reg)) +
      row(t("registrationEnd"), '<span class="reg-end">' + escapeHtml(formatDate(p.registration_end)) + "</span>") +
      row(t("auctionDate"), '<span class="auction-date">' + escapeHtml(auctionAt) + "</span>") +
      (p.auction_place ? row(t("auctionPlace"), escapeHtml(p.auction_place)) : "") +
      (p.auction_form ? row(t("auctionForm"), escapeHtml(p.auction_form)) : "") +
      row(t("organiser"), escapeHtml(p.organiser || t("none"))) +
      (p.asset_owner ? row(t("assetOwner"), escapeHtml(p.asset_owner)) : "") +
      row(t("linkedParcels"), '<ul class="parcels" id="linked-parcels"></ul>') +
      "</dl>";
    if (p.synthetic) html += '<p class="hint">(' + escapeHtml(t("synthetic_tag")) + ")</p>";
    el("detail-body").innerHTML = html;
    paintBadges(el("detail-body"));
    var ids = p.parcel_ids || [];
    var ul = el("linked-parcels");
    if (!ids.length) ul.outerHTML = escapeHtml(t("none"));
    ids.slice(0, 10).forEach(function (pid) {
      var li = document.createElement("li");
      li.textContent = "#" + pid;
      ul.appendChild(li);
      fetch(ORIGIN + "/collections/" + PARCELS + "/items/" + encodeURIComponent(pid),
            { headers: { Accept: "application/geo+json, application/json" } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (pf) {
          var pp = pf.properties || {};
          var b = document.createElement("button");
          b.type = "button"; b.className = "link-btn";
          b.textContent = t("parcelsItem", { s: pp.map_sheet, p: pp.parcel_no }) +
            (pp.status ? " (" + statusLabel(pp.status) + ")" : "");
          b.addEventListener("click", function () {
            var bb = pf.bbox || bboxOf(pf.geometry);
            if (bb) fitTo(bb, 18);
          });
          li.textContent = ""; li.appendChild(b);
        }).catch(function () { /* keep the id */ });
    });
  }
  function bboxOf(g) {
    if (!g) return null;
    var b = [Infinity, Infinity, -Infinity, -Infinity];
    (function walk(c) {
      if (typeof c[0] === "number") { b[0] = Math.min(b[0], c[0]); b[1] = Math.min(b[1], c[1]); b[2] = Math.max(b[2], c[0]); b[3] = Math.max(b[3], c[1]); }
      else c.forEach(walk);
    })(g.coordinates);
    return isFinite(b[0]) ? b : null;
  }
  function closeDetail() {
    var panel = el("detail");
    if (panel.hidden) return;
    panel.hidden = true;
    state.plot = null; state.parcel = null;
    detailSeq++;
    selectOn(null, null);
    writeHash();
    if (lastFocus && lastFocus.focus) lastFocus.focus();
  }

  /* -- upcoming auctions: the list beside the map, filtered like the map ---------------------------------- */
  var upcomingItems = null;
  function loadUpcoming() {
    fetch(ORIGIN + "/auctions/upcoming?limit=1000&lang=" + state.lang, { headers: { Accept: "application/json" } })
      .then(function (r) { return r.json().then(function (b) { if (!r.ok) throw new Error(b.detail || r.status); return b; }); })
      .then(function (b) { upcomingItems = b.auctions || []; renderUpcoming(); window.datsoUpcomingReady = true; })
      .catch(function (e) { el("upcoming-count").textContent = t("tileError", { msg: e.message }); });
  }
  function matchesFilters(a) {
    if (state.statuses.indexOf(a.status) < 0) return false;
    if (state.commune && a.commune_code !== state.commune) return false;
    if (state.use && a.land_use_code !== state.use) return false;
    if (state.pmin !== null && a.starting_price_vnd < state.pmin) return false;
    if (state.pmax !== null && a.starting_price_vnd > state.pmax) return false;
    var day = a.auction_date ? formatDate(a.auction_date).split("/").reverse().join("-") : "";
    if (state.from && (!day || day < state.from)) return false;
    if (state.to && (!day || day > state.to)) return false;
    return true;
  }
  function renderUpcoming() {
    var list = el("upcoming-list");
    if (!list || upcomingItems === null) return;
    var shown = upcomingItems.filter(matchesFilters);
    el("upcoming-count").textContent = shown.length ? t("upcomingCount", { n: shown.length }) : t("upcomingNone");
    list.innerHTML = "";
    shown.slice(0, 100).forEach(function (a) {
      var colour = (LAYERS[AUCTION].classes.filter(function (c) { return c.code === a.status; })[0] || {}).colour;
      var li = document.createElement("li");
      li.className = "upcoming-item";
      li.dataset.id = String(a.id);
      var left = a.days_left === null ? "" : a.days_left === 0 ? t("dueToday") :
        a.days_left === 1 ? t("dayLeft") : t("daysLeft", { n: a.days_left });
      li.innerHTML = '<button type="button" class="upcoming-go">' +
        '<span class="up-code">' + escapeHtml(a.plot_code) + "</span>" +
        '<span class="days-left' + (a.days_left !== null && a.days_left <= 7 ? " soon" : "") + '">' + escapeHtml(left) + "</span>" +
        '<span class="up-where">' + escapeHtml((a.commune_name || "") + " · " + formatNumber(a.area_m2, 0) + " m² · " + a.land_use_code) + "</span>" +
        '<span class="up-when">' + badge(colour, statusLabel(a.status)) + " " +
        escapeHtml(t("deadline", { d: formatDate(a.registration_end) })) + "</span>" +
        '<span class="up-price">' + escapeHtml(formatVND(a.starting_price_vnd)) + "</span></button>" +
        '<a class="up-notice" href="' + escapeHtml(a.links.notice) + '">' + escapeHtml(t("notice")) + "</a>";
      li.querySelector("button").addEventListener("click", function () {
        state.visible[AUCTION] = true; applyVisibility();
        if (isPhone()) closeSheet();
        openPlot(String(a.id), true);
        fitTo(a.bbox, 17, true);
      });
      list.appendChild(li);
    });
    paintBadges(list);
  }
  function zoomToCommune() {
    if (!map || !state.commune) return;
    var c = CONFIG.communes.filter(function (x) { return x.code === state.commune; })[0];
    if (c && c.bbox) fitTo(c.bbox, 15);
  }
  function closeSheet() {
    var sb = el("sidebar");
    if (!sb.hidden) el("panel-toggle").click();
  }

  /* -- "what applies here": GET /lookup at a clicked point --------------------------------------------- */
  function section(title, inner) {
    return '<section class="here-part"><h3>' + escapeHtml(title) + "</h3>" + inner + "</section>";
  }
  function displayRows(m, keys) {
    return keys.filter(function (k) { return m.display && m.display[k]; }).map(function (k) {
      return row(m.display[k].title, escapeHtml(m.display[k].text));
    }).join("");
  }
  function renderLookup(b) {
    var html = "";
    if (b.parcel) {
      var p = b.parcel, uses = (p.land_use || []).map(function (u) { return u.code + " – " + u.name; }).join("; ");
      html += section(t("hereParcel"), '<p class="here-title"><a href="' + escapeHtml(p.href) + '?f=html">' +
        escapeHtml(p.title || "") + "</a></p><dl>" +
        row(t("area"), escapeHtml(formatNumber(p.properties.area_m2) + " m²")) +
        row(t("purpose"), escapeHtml(uses || t("none"))) +
        (p.status_label ? row(t("status"), escapeHtml(p.status_label)) : "") +
        (p.properties.address ? row(t("address"), escapeHtml(p.properties.address)) : "") + "</dl>");
    }
    if (b.commune || b.old_commune) {
      html += section(t("hereAdmin"), "<dl>" +
        (b.commune ? row(t("hereCommune"), escapeHtml(b.commune.name + " (" + b.commune.code + ")")) : "") +
        (b.old_commune ? row(t("hereOldCommune"), escapeHtml(b.old_commune.name + " (" + b.old_commune.code + ")")) : "") +
        "</dl>");
    }
    if (b.planning_zone) {
      var z = b.planning_zone;
      html += section(t("herePlan"), '<p class="here-title"><a href="' + escapeHtml(z.href) + '?f=html">' +
        escapeHtml(z.title || "") + "</a></p><dl>" + displayRows(z, ["plan_period", "decision_no", "approved_by"]) + "</dl>");
    }
    if (b.land_price_zone) {
      var pz = b.land_price_zone;
      html += section(t("herePrice"), '<p class="here-title"><a href="' + escapeHtml(pz.href) + '?f=html">' +
        escapeHtml(pz.title || "") + '</a></p><dl class="prices">' + (pz.prices || []).map(function (x) {
          return row(x.land_type, escapeHtml(x.text || formatVND(x.vnd_per_m2)), "price");
        }).join("") + displayRows(pz, ["decision_no"]) + "</dl>");
    }
    (b.auction_plots || []).forEach(function (a) {
      html += section(t("hereAuction"), '<p class="here-title"><button type="button" class="link-btn here-plot" data-id="' +
        escapeHtml(String(a.id)) + '">' + escapeHtml(a.properties.plot_code || String(a.id)) + "</button> " +
        escapeHtml(a.status_label || "") + "</p>");
    });
    (b.growing_areas || []).forEach(function (g) {
      html += section(t("hereGrowing"), '<p class="here-title"><a href="' + escapeHtml(g.href) + '?f=html">' +
        escapeHtml(g.properties.code || String(g.id)) + "</a> " + escapeHtml(g.status_label || "") + "</p>");
    });
    if (!html) html = '<p class="hint">' + escapeHtml(t("hereNothing")) + "</p>";
    return html;
  }
  function openLookup(lngLat, moveFocus) {
    state.plot = null; state.parcel = null;
    var seq = ++detailSeq;
    var panel = el("detail"), body = el("detail-body"), title = el("detail-title");
    if (panel.hidden) lastFocus = document.activeElement;
    panel.hidden = false;
    panel.classList.add("here");
    title.textContent = t("hereTitle");
    body.innerHTML = '<p class="hint">' + escapeHtml(t("loading")) + "</p>";
    selectOn(null, null);
    writeHash();
    var url = ORIGIN + "/lookup?lon=" + lngLat.lng.toFixed(7) + "&lat=" + lngLat.lat.toFixed(7) + "&lang=" + state.lang;
    fetch(url, { headers: { Accept: "application/json" } })
      .then(function (r) { return r.json().then(function (b) { if (!r.ok) throw new Error(b.detail || b.title || r.status); return b; }); })
      .then(function (b) {
        if (seq !== detailSeq) return;
        body.innerHTML = '<p class="here-point">' + escapeHtml(lngLat.lat.toFixed(5) + ", " + lngLat.lng.toFixed(5)) + "</p>" +
          renderLookup(b);
        body.querySelectorAll(".here-plot").forEach(function (btn) {
          btn.addEventListener("click", function () { openPlot(btn.dataset.id, true); });
        });
        window.datsoLookupReady = true;
      })
      .catch(function (e) {
        if (seq !== detailSeq) return;
        body.innerHTML = '<p class="hint">' + escapeHtml(t("hereUnavailable", { msg: e.message })) + "</p>";
        window.datsoLookupReady = true;
      });
    if (moveFocus) title.focus();
  }

  /* -- boot ------------------------------------------------------------------------------------------ */
  function applyInitial() {
    var init = CONFIG.initial || {};
    if (init.status) state.statuses = init.status;
    ["commune", "use", "from", "to"].forEach(function (k) { if (init[k]) state[k] = init[k]; });
    if (init.pmin !== undefined) state.pmin = init.pmin;
    if (init.pmax !== undefined) state.pmax = init.pmax;
  }

  function start() {
    applyInitial();
    readHash();
    fillSelects();
    syncInputs();
    applyLanguage();
    var small = window.matchMedia("(max-width: 700px)").matches;
    if (small) { el("sidebar").hidden = true; el("panel-toggle").setAttribute("aria-expanded", "false"); }

    var opts = { container: "map", style: buildStyle(), attributionControl: false, maxPitch: 0,
                 dragRotate: false, pitchWithRotate: false, touchPitch: false };
    if (state.view) { opts.center = state.view.center; opts.zoom = state.view.zoom; }
    else if (CONFIG.bounds) { opts.bounds = [[CONFIG.bounds[0], CONFIG.bounds[1]], [CONFIG.bounds[2], CONFIG.bounds[3]]];
                              opts.fitBoundsOptions = { padding: 20 }; }
    else { opts.center = [106.0, 16.0]; opts.zoom = 5; }
    map = new maplibregl.Map(opts);
    window.datsoMap = map;
    // on a phone the whole province fits only below the plots' first zoom: show the plots instead
    if (!state.view && map.getZoom() < LAYERS[AUCTION].minzoom) map.jumpTo({ zoom: LAYERS[AUCTION].minzoom });
    map.touchZoomRotate.disableRotation();
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
    map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
    map.addControl(new maplibregl.AttributionControl({ compact: true }));

    map.on("moveend", writeHash);
    map.on("error", function (e) {
      var err = e && e.error, msg = err && (err.message || String(err));
      if (err && err.status) msg = "HTTP " + err.status + (err.message ? " – " + err.message : "");
      showNotice(t("tileError", { msg: msg || "?" }));
    });
    map.on("load", function () {
      refreshDateIds();
      loadUpcoming();
      window.datsoReady = true;
      if (state.plot) openPlot(state.plot, false);
      else if (state.parcel) openParcel(state.parcel, false);
      writeHash();
    });
    function plotAt(point) {
      var pad = 6, box = [[point.x - pad, point.y - pad], [point.x + pad, point.y + pad]];
      var feats = map.queryRenderedFeatures(box, { layers: AUCTION_LAYER_IDS.filter(function (id) { return map.getLayer(id); }) });
      return feats.length ? feats[0] : null;
    }
    function parcelAt(point) {
      if (!map.getLayer("parcels-fill") || !state.visible[PARCELS]) return null;
      var feats = map.queryRenderedFeatures(point, { layers: ["parcels-fill"] });
      return feats.length ? feats[0] : null;
    }
    map.on("click", function (e) {
      var f = plotAt(e.point), kind = "plot";
      if (!f) { f = parcelAt(e.point); kind = "parcel"; }
      if (!f || f.id === undefined) { openLookup(e.lngLat, false); return; }
      if (kind === "plot") openPlot(String(f.id), true); else openParcel(String(f.id), true);
      if (isPhone()) {   // keep the feature visible above the bottom sheet
        var h = map.getContainer().offsetHeight, y = e.point.y, top = h - h * 0.55;
        if (y > top - 40) map.panBy([0, y - (top / 2)], { duration: 400 });
      }
    });
    map.on("mousemove", function (e) {
      map.getCanvas().style.cursor = plotAt(e.point) || parcelAt(e.point) ? "pointer" : "";
    });

    el("search-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var q = el("search-input").value.trim();
      if (q) runSearch(q);
    });
    el("search-input").addEventListener("keydown", function (ev) {
      var first = el("search-results").querySelector("button");
      if (ev.key === "ArrowDown" && first && !el("search-box").hidden) { ev.preventDefault(); first.focus(); }
    });
    ["f-commune", "f-use", "f-pmin", "f-pmax", "f-from", "f-to"].forEach(function (id) {
      el(id).addEventListener("change", readInputs);
    });
    el("f-commune").addEventListener("change", zoomToCommune);
    el("sheet-close").addEventListener("click", closeSheet);
    el("f-reset").addEventListener("click", function () {
      state.statuses = AUCTION_STATUSES.slice(); state.parcelStatuses = PARCEL_STATUSES.slice();
      state.commune = ""; state.use = ""; state.pmin = null; state.pmax = null; state.from = ""; state.to = "";
      syncInputs(); renderSidebar(); applyStyleFilters(); applyTileFilters(); refreshDateIds(); writeHash();
      renderUpcoming();
    });
    el("share").addEventListener("click", function () {
      writeHash();
      var url = window.location.href;
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(url).then(function () { el("share-status").textContent = t("copied"); },
          function () { el("share-status").textContent = t("shareText", { url: url }); });
      } else { el("share-status").textContent = t("shareText", { url: url }); }
    });
    el("panel-toggle").addEventListener("click", function () {
      var sb = el("sidebar"), open = sb.hidden;
      sb.hidden = !open;
      el("panel-toggle").setAttribute("aria-expanded", open ? "true" : "false");
      if (open) { var first = sb.querySelector("input, select, button"); if (first) first.focus(); }
      setTimeout(function () { map.resize(); }, 0);
    });
    el("lang-switch").addEventListener("click", function () {
      state.lang = state.lang === "vi" ? "en" : "vi";
      applyLanguage(); writeHash();
    });
    el("detail-close").addEventListener("click", closeDetail);
    document.addEventListener("keydown", function (ev) {
      if (ev.key !== "Escape") return;
      if (!el("search-box").hidden) { el("search-box").hidden = true; el("search-input").focus(); return; }
      if (!el("detail").hidden) { closeDetail(); return; }
      if (window.matchMedia("(max-width: 700px)").matches && !el("sidebar").hidden) el("panel-toggle").click();
    });
    window.addEventListener("hashchange", function () {
      var before = stateParams().toString();
      readHash();
      if (stateParams().toString() !== before) {
        syncInputs(); applyLanguage(); applyStyleFilters(); applyTileFilters(); applyVisibility(); refreshDateIds();
      }
      if (state.view) map.jumpTo({ center: state.view.center, zoom: state.view.zoom });
    });
  }

  window.datsoMapApp = { state: state, formatVND: formatVND, formatDate: formatDate, tileUrl: tileUrl, openPlot: openPlot, openParcel: openParcel };
  start();
})();
