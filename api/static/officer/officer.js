/* datso officer page: sign in, my areas (filters, counts, paging), register (draw or upload, validation with the
 * conflicting areas on the map), grant / suspend / revoke / reactivate under If-Match, history with the old
 * boundary, season / inspection / pest records. Plain JS over datso's own APIs and the vendored MapLibre GL JS;
 * no inline script or style (the page's CSP), no request leaves the server's origin. */
(function () {
  "use strict";

  var CONFIG = JSON.parse(document.getElementById("datso-config").textContent);
  var ORIGIN = window.location.origin;
  var PAGE = 20;

  /* every message once, Vietnamese and English side by side (t() falls back to Vietnamese, then the key) */
  var TEXT = {
    title: { vi: "Mã số vùng trồng — cán bộ", en: "Growing-area codes — officer" },
    signInHeading: { vi: "Đăng nhập", en: "Sign in" },
    signInHint: { vi: "Dành cho cán bộ Chi cục Trồng trọt và Bảo vệ thực vật.", en: "For officers of the provincial Plant Protection Sub-Department." },
    userName: { vi: "Tên đăng nhập", en: "User name" },
    password: { vi: "Mật khẩu", en: "Password" },
    signIn: { vi: "Đăng nhập", en: "Sign in" },
    signOut: { vi: "Đăng xuất", en: "Sign out" },
    signingIn: { vi: "Đang đăng nhập…", en: "Signing in…" },
    missingCredentials: { vi: "Nhập tên đăng nhập và mật khẩu.", en: "Enter your user name and password." },
    newItem: { vi: "+ Đăng ký mới", en: "+ Register new" },
    refresh: { vi: "Làm mới", en: "Refresh" },
    status: { vi: "Trạng thái", en: "Status" },
    crop: { vi: "Cây trồng", en: "Crop" },
    commune: { vi: "Xã", en: "Commune" },
    all: { vi: "Tất cả", en: "All" },
    prev: { vi: "‹ Trước", en: "‹ Previous" },
    next: { vi: "Sau ›", en: "Next ›" },
    back: { vi: "‹ Danh sách", en: "‹ List" },
    undo: { vi: "Hoàn tác", en: "Undo" },
    clear: { vi: "Xóa", en: "Clear" },
    done: { vi: "Xong", en: "Done" },
    loading: { vi: "Đang tải…", en: "Loading…" },
    usersTab: { vi: "Người dùng", en: "Users" },
    newUser: { vi: "Tạo người dùng", en: "New user" },
    displayName: { vi: "Họ tên", en: "Full name" },
    role: { vi: "Vai trò", en: "Role" },
    roleProducer: { vi: "Nhà sản xuất", en: "Producer" },
    rolePacker: { vi: "Cơ sở đóng gói", en: "Packer" },
    provincesField: { vi: "Mã tỉnh (cách nhau bằng dấu phẩy)", en: "Province codes (comma-separated)" },
    communesField: { vi: "Mã xã (không bắt buộc)", en: "Commune codes (optional)" },
    areasField: { vi: "Mã vùng trồng của họ (cách nhau bằng dấu phẩy)", en: "Their growing-area codes (comma-separated)" },
    facilitiesField: { vi: "Mã cơ sở đóng gói của họ (cách nhau bằng dấu phẩy)", en: "Their packing-house codes (comma-separated)" },
    passwordOptional: { vi: "Mật khẩu đăng nhập (không bắt buộc)", en: "Sign-in password (optional)" },
    createUser: { vi: "Tạo người dùng", en: "Create user" },
    keyOnce: { vi: "Khóa API của {name} — chỉ hiện một lần, hãy sao chép và trao cho họ:", en: "{name}'s API key — shown once; copy it and hand it over:" },
    scope: { vi: "Phạm vi", en: "Scope" },
    userActive: { vi: "Đang hoạt động", en: "Active" },
    userDisabled: { vi: "Đã vô hiệu hóa", en: "Disabled" },
    disableUser: { vi: "Vô hiệu hóa", en: "Disable" },
    confirmDisable: { vi: "Bấm lần nữa để xác nhận", en: "Click again to confirm" },
    userDisabledToast: { vi: "Đã vô hiệu hóa {name}: mọi khóa của họ ngừng hoạt động.", en: "{name} disabled: all their keys stop working." },
    areasLabel: { vi: "Vùng trồng", en: "Growing areas" },
    facilitiesLabel: { vi: "Cơ sở đóng gói", en: "Packing houses" },
    keysCount: { vi: "{n} khóa", en: "{n} keys" },
    empty: { vi: "Không có đối tượng nào khớp bộ lọc.", en: "Nothing matches the filters." },
    noCode: { vi: "Chưa có mã (nháp)", en: "No code yet (draft)" },
    pageInfo: { vi: "{a}–{b} / {n}", en: "{a}–{b} of {n}" },
    roleOfficer: { vi: "Cán bộ", en: "Officer" },
    roleAdmin: { vi: "Quản trị", en: "Admin" },
    national: { vi: "Toàn quốc", en: "National" },
    province: { vi: "Tỉnh", en: "Province" },
    communes: { vi: "xã", en: "communes" },
    scopeLabel: { vi: "Phạm vi", en: "Scope" },
    fields: { vi: "Thông tin", en: "Details" },
    actions: { vi: "Thao tác", en: "Actions" },
    history: { vi: "Lịch sử", en: "History" },
    grant: { vi: "Cấp mã", en: "Grant code" },
    reactivate: { vi: "Khôi phục hiệu lực", en: "Reactivate" },
    renew: { vi: "Cấp lại (hết hiệu lực)", en: "Renew (expired)" },
    suspend: { vi: "Tạm đình chỉ", en: "Suspend" },
    revoke: { vi: "Thu hồi", en: "Revoke" },
    confirm: { vi: "Xác nhận", en: "Confirm" },
    cancel: { vi: "Hủy", en: "Cancel" },
    reason: { vi: "Lý do", en: "Reason" },
    reasonRequired: { vi: "Cần nhập lý do.", en: "A reason is required." },
    decisionNo: { vi: "Số quyết định", en: "Decision no." },
    decisionDate: { vi: "Ngày quyết định", en: "Decision date" },
    validTo: { vi: "Hiệu lực đến (không bắt buộc)", en: "Valid to (optional)" },
    decisionRequired: { vi: "Cần số và ngày quyết định.", en: "The decision number and date are required." },
    noActions: { vi: "Không còn thao tác nào cho trạng thái này.", en: "No action left for this status." },
    granted: { vi: "Đã cấp mã {code}.", en: "Code {code} granted." },
    changed: { vi: "Đã chuyển sang “{s}”.", en: "Moved to “{s}”." },
    stale: { vi: "Có người vừa sửa đối tượng này; đã tải lại, hãy thử lại.", en: "Someone changed this meanwhile; reloaded, please try again." },
    historyEmpty: { vi: "Chưa có thay đổi nào.", en: "No change yet." },
    showBefore: { vi: "Xem ranh giới cũ", en: "Show old boundary" },
    hideBefore: { vi: "Ẩn ranh giới cũ", en: "Hide old boundary" },
    actCreate: { vi: "Tạo mới", en: "Created" },
    actUpdate: { vi: "Sửa", en: "Changed" },
    actDelete: { vi: "Xóa", en: "Deleted" },
    by: { vi: "bởi", en: "by" },
    geometryChanged: { vi: "Ranh giới thay đổi", en: "Boundary changed" },
    registerHeading: { vi: "Đăng ký mới: {layer}", en: "Register: {layer}" },
    modeDraw: { vi: "Vẽ trên bản đồ", en: "Draw on the map" },
    modeUpload: { vi: "Tải tệp ranh giới", en: "Upload a boundary file" },
    drawStart: { vi: "Vẽ ranh giới", en: "Draw the boundary" },
    drawAgain: { vi: "Vẽ lại", en: "Draw again" },
    drawPoint: { vi: "Chọn vị trí", en: "Pick the location" },
    drawHintPolygon: { vi: "Nhấn lên bản đồ để thêm đỉnh (ít nhất 3), rồi bấm Xong.", en: "Tap the map to add vertices (3 or more), then Done." },
    drawHintPoint: { vi: "Nhấn lên bản đồ để chọn vị trí.", en: "Tap the map to pick the location." },
    noGeometry: { vi: "Chưa có ranh giới.", en: "No boundary yet." },
    geomArea: { vi: "Ranh giới: {n} đỉnh, diện tích ≈ {m2} m² ({ha} ha)", en: "Boundary: {n} vertices, area ≈ {m2} m² ({ha} ha)" },
    geomPoint: { vi: "Vị trí: {lat}, {lon}", en: "Location: {lat}, {lon}" },
    minimum: { vi: "Tối thiểu cho {crop}: {ha} ha", en: "Minimum for {crop}: {ha} ha" },
    belowMinimum: { vi: "Nhỏ hơn diện tích tối thiểu ({ha} ha).", en: "Below the minimum area ({ha} ha)." },
    submitDraft: { vi: "Kiểm tra và tạo bản nháp", en: "Check and create the draft" },
    submitting: { vi: "Đang kiểm tra…", en: "Checking…" },
    created: { vi: "Đã tạo bản nháp #{id}.", en: "Draft #{id} created." },
    uploadFile: { vi: "Tệp ranh giới", en: "Boundary file" },
    uploadHint: { vi: "Shapefile nén (.zip), GeoPackage (.gpkg), GeoJSON, KML. Mọi dòng được kiểm tra; có lỗi thì không ghi dòng nào.", en: "Zipped Shapefile (.zip), GeoPackage (.gpkg), GeoJSON, KML. Every row is checked; if one fails nothing is written." },
    crsLabel: { vi: "Hệ tọa độ (nếu tệp không ghi rõ)", en: "Coordinate system (if the file does not say)" },
    upload: { vi: "Tải lên và kiểm tra", en: "Upload and check" },
    uploaded: { vi: "Đã nhập {n} vùng nháp từ tệp.", en: "{n} draft areas imported from the file." },
    chooseFile: { vi: "Chọn một tệp.", en: "Choose a file." },
    pickFile: { vi: "Chọn tệp…", en: "Choose a file…" },
    noFile: { vi: "Chưa chọn tệp", en: "No file chosen" },
    preview: { vi: "Xem trước: {n} đối tượng từ tệp.", en: "Preview: {n} features in the file." },
    warnings: { vi: "Cảnh báo", en: "Warnings" },
    conflictsWith: { vi: "Chồng lấn với (tô đỏ trên bản đồ):", en: "Overlaps (red on the map):" },
    view: { vi: "Xem", en: "View" },
    autoCommune: { vi: "(tự xác định theo vị trí)", en: "(derived from the location)" },
    computed: { vi: "tính từ ranh giới nếu để trống", en: "computed from the boundary when empty" },
    row: { vi: "dòng", en: "row" },
    field: { vi: "trường", en: "field" },
    repairOffer: { vi: "Dùng hình học đã sửa ({m2} m²)", en: "Use the repaired geometry ({m2} m²)" },
    network: { vi: "Không kết nối được máy chủ. Kiểm tra mạng rồi thử lại.", en: "Cannot reach the server. Check the network and try again." },
    sessionEnded: { vi: "Phiên đăng nhập đã hết; hãy đăng nhập lại.", en: "Your session has ended; please sign in again." },
    add: { vi: "+ Thêm", en: "+ Add" },
    save: { vi: "Lưu", en: "Save" },
    recordsEmpty: { vi: "Chưa có bản ghi.", en: "No records yet." },
    recordSaved: { vi: "Đã lưu bản ghi.", en: "Record saved." },
    legendCandidate: { vi: "Ranh giới đang đăng ký", en: "Boundary being registered" },
    legendConflict: { vi: "Vùng chồng lấn", en: "Overlapping area" },
    legendBefore: { vi: "Ranh giới cũ", en: "Old boundary" },
    months: { vi: "tháng (vd. 1,2,3)", en: "months (e.g. 1,2,3)" },
    yes: { vi: "Có", en: "Yes" },
    no: { vi: "Không", en: "No" },
    selectHint: { vi: "Chọn một vùng trong danh sách hoặc trên bản đồ.", en: "Pick an area in the list or on the map." },
    total: { vi: "Tất cả", en: "All" },
    relationCodes: { vi: "Mã các vùng trồng (mỗi dòng một mã)", en: "Growing-area codes (one per line)" }
  };

  var savedLang = null;
  try { savedLang = window.localStorage.getItem("datso-lang"); } catch (e) { savedLang = null; }
  var S = {
    lang: /[?&]lang=en\b/.test(window.location.search) ? "en" : (savedLang === "en" ? "en" : CONFIG.lang || "vi"),
    token: null, user: null, layer: CONFIG.layers[0], filters: { status: "", crop: "", commune: "" }, offset: 0,
    matched: 0, items: [], selected: null, etag: null, view: "list", registerMode: "draw", candidate: null,
    draw: null, subtab: "history", before: null, listSeq: 0
  };
  try {
    S.token = window.sessionStorage.getItem("datso-token");
    S.user = JSON.parse(window.sessionStorage.getItem("datso-user") || "null");
  } catch (e) { S.token = null; }

  function t(key, vars) {
    var m = TEXT[key], s = m ? (m[S.lang] || m.vi || key) : key;
    if (vars) Object.keys(vars).forEach(function (k) { s = s.split("{" + k + "}").join(String(vars[k])); });
    return s;
  }
  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    });
    (children || []).forEach(function (c) { if (c !== null && c !== undefined) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function L(obj) { return obj ? (obj[S.lang] || obj.vi) : ""; }

  /* -- formatting: 1.250,5 (vi) / 1,250.5 (en); dates dd/mm/yyyy (vi), 29 Nov 2026 (en) ---------------------- */
  function fmtNum(v, decimals) {
    if (v === null || v === undefined || v === "") return "";
    var n = Number(v);
    if (!isFinite(n)) return String(v);
    var d = decimals === undefined ? (Math.abs(n % 1) > 1e-9 ? 2 : 0) : decimals;
    var parts = Math.abs(n).toFixed(d).split(".");
    var frac = parts[1] ? parts[1].replace(/0+$/, "") : "";
    var sep = S.lang === "vi" ? [".", ","] : [",", "."];
    var int = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, sep[0]);
    return (n < 0 ? "-" : "") + int + (frac ? sep[1] + frac : "");
  }
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  function fmtDate(v) {
    if (!v) return "";
    var m = /^(\d{4})-(\d{2})-(\d{2})/.exec(String(v));
    if (!m) return String(v);
    return S.lang === "vi" ? m[3] + "/" + m[2] + "/" + m[1] : Number(m[3]) + " " + MONTHS[Number(m[2]) - 1] + " " + m[1];
  }
  function fmtDateTime(v) {
    if (!v) return "";
    var d = new Date(v);
    if (isNaN(d.getTime())) return String(v);
    var pad = function (x) { return (x < 10 ? "0" : "") + x; };
    var iso = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
    return fmtDate(iso) + " " + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }
  function parseNum(text) {
    var s = String(text).trim().replace(/\s/g, "");
    if (s === "") return null;
    if (S.lang === "vi") s = s.replace(/\./g, "").replace(",", ".");
    else s = s.replace(/,/g, "");
    var n = Number(s);
    return isFinite(n) ? n : NaN;
  }
  function today() {
    var d = new Date(), pad = function (x) { return (x < 10 ? "0" : "") + x; };
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
  }

  function fieldOf(layer, name) { return layer.fields.filter(function (f) { return f.name === name; })[0]; }
  function stateOf(code) { return S.layer.status.states.filter(function (s) { return s.code === code; })[0]; }
  function optionLabel(f, code) {
    var opts = (f && (f.enum || f.items)) || [];
    var o = opts.filter(function (x) { return x.code === code; })[0];
    return o ? L(o) : code;
  }
  function communeName(code) {
    var c = CONFIG.communes.filter(function (x) { return x.code === code; })[0];
    return c ? c.name + " (" + code + ")" : code;
  }
  function fmtValue(f, v) {
    if (v === null || v === undefined || v === "") return "—";
    if (f && f.name === S.layer.communeField) return communeName(v);
    if (Array.isArray(v)) return v.map(function (x) { return f && f.items ? optionLabel(f, x) : String(x); }).join(", ");
    if (f && f.enum) return optionLabel(f, v);
    if (f && f.type === "date") return fmtDate(v);
    if (f && f.type === "date-time") return fmtDateTime(v);
    if (f && f.type === "boolean") return v ? t("yes") : t("no");
    if (f && (f.type === "number" || f.type === "integer")) return fmtNum(v);
    return String(v);
  }
  function badge(code) {
    var s = stateOf(code);
    var b = el("span", { "class": "badge" + (code === "draft" ? " light" : ""), text: s ? L(s) : code });
    b.style.background = s ? s.colour : "#777";
    return b;
  }
  function toast(msg) {
    var n = $("toast");
    n.textContent = msg; n.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { n.hidden = true; }, 4000);
  }

  /* -- the API ------------------------------------------------------------------------------------------------ */
  function api(method, path, opts) {
    opts = opts || {};
    var headers = { "Accept-Language": S.lang, "Accept": "application/geo+json, application/json, application/problem+json" };
    if (S.token) headers.Authorization = "Bearer " + S.token;
    var body;
    if (opts.json !== undefined) { headers["Content-Type"] = opts.type || "application/json"; body = JSON.stringify(opts.json); }
    if (opts.form) body = opts.form;
    if (opts.ifMatch) headers["If-Match"] = opts.ifMatch;
    return fetch(ORIGIN + path, { method: method, headers: headers, body: body, cache: "no-store" }).then(function (r) {
      return r.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
        var res = { ok: r.ok, status: r.status, data: data, etag: r.headers.get("ETag"), location: r.headers.get("Location") };
        if (r.status === 401 && S.token && path.indexOf("/auth/login") < 0) {
          signedOut(t("sessionEnded"));
        }
        return res;
      });
    }, function () {
      return { ok: false, status: 0, data: { detail: t("network") }, etag: null };
    });
  }
  function qs(params) {
    return Object.keys(params).filter(function (k) { return params[k] !== "" && params[k] !== null && params[k] !== undefined; })
      .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]); }).join("&");
  }
  function problemText(res) {
    var d = res.data || {};
    return d.detail || d.title || ("HTTP " + res.status);
  }
  function problemBox(res) {
    var d = res.data || {};
    var box = el("div", { "class": "error", role: "alert" }, [el("strong", { text: problemText(res) })]);
    var errs = (d.errors || []).filter(function (e) { return e && e.message; });
    if (errs.length > 1 || (errs.length === 1 && (d.detail || "").indexOf(errs[0].message) < 0)) {
      var ul = el("ul", { "class": "conflicts" });
      errs.slice(0, 30).forEach(function (e) {
        var where = [];
        if (e.row) where.push(t("row") + " " + e.row);
        if (e.field) where.push(t("field") + " " + e.field);
        ul.appendChild(el("li", { text: (where.length ? where.join(", ") + ": " : "") + e.message }));
      });
      box.appendChild(ul);
    }
    return box;
  }

  /* -- scope -------------------------------------------------------------------------------------------------- */
  function scopeCommunes() {
    var u = S.user;
    if (!u || !u.scope || u.scope.national) return CONFIG.communes;
    var provs = u.scope.provinces || [], only = u.scope.communes || [];
    return CONFIG.communes.filter(function (c) {
      return only.length ? only.indexOf(c.code) >= 0 : provs.indexOf(c.province) >= 0;
    });
  }
  function scopeFilter() {
    var u = S.user;
    if (!u || !u.scope || u.scope.national) return "";
    var codes = scopeCommunes().map(function (c) { return "'" + c.code + "'"; });
    return codes.length ? S.layer.communeField + " IN (" + codes.join(",") + ")" : S.layer.communeField + " = ''";
  }
  function scopeText() {
    var u = S.user;
    if (!u) return "";
    var role = u.role === "admin" ? t("roleAdmin") : t("roleOfficer");
    if (!u.scope || u.scope.national) return role + " · " + t("national");
    var s = role + " · " + t("province") + " " + (u.scope.provinces || []).join(", ");
    if ((u.scope.communes || []).length) s += " (" + u.scope.communes.length + " " + t("communes") + ")";
    return s;
  }

  /* -- sign in / out ------------------------------------------------------------------------------------------ */
  function showLogin(message) {
    $("login-view").hidden = false; $("app-view").hidden = true; $("who").hidden = true; $("sign-out").hidden = true;
    var err = $("login-error");
    err.hidden = !message; err.textContent = message || "";
    $("login-name").focus();
  }
  function signedOut(message) {
    S.token = null; S.user = null;
    try { window.sessionStorage.removeItem("datso-token"); window.sessionStorage.removeItem("datso-user"); } catch (e) { /* private mode */ }
    showLogin(message);
  }
  function signedIn() {
    $("login-view").hidden = true; $("app-view").hidden = false; $("who").hidden = false; $("sign-out").hidden = false;
    $("who-name").textContent = S.user.display_name || S.user.name;
    $("who-scope").textContent = scopeText();
    ensureMap();
    renderTabs(); fillFilters(); showView("list"); loadList();
  }
  $("login-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var name = $("login-name").value.trim(), password = $("login-password").value;
    if (!name || !password) { showLogin(t("missingCredentials")); return; }
    var btn = $("login-submit");
    btn.disabled = true; btn.textContent = t("signingIn");
    api("POST", "/auth/login", { json: { name: name, password: password } }).then(function (res) {
      btn.disabled = false; btn.textContent = t("signIn");
      if (!res.ok) { showLogin(problemText(res)); return; }
      S.token = res.data.token; S.user = res.data.user;
      try {
        window.sessionStorage.setItem("datso-token", S.token);
        window.sessionStorage.setItem("datso-user", JSON.stringify(S.user));
      } catch (e) { /* private mode: the session lasts as long as the page */ }
      $("login-password").value = "";
      signedIn();
    });
  });
  $("sign-out").addEventListener("click", function () {
    var done = function () { signedOut(""); };
    api("POST", "/auth/logout").then(done, done);
  });

  /* -- language ----------------------------------------------------------------------------------------------- */
  function applyLang() {
    document.documentElement.lang = S.lang;
    document.title = t("title") + " — datso";
    document.querySelectorAll("[data-i18n]").forEach(function (n) { n.textContent = t(n.dataset.i18n); });
    $("lang-switch").textContent = S.lang === "vi" ? "English" : "Tiếng Việt";
    $("lang-switch").setAttribute("lang", S.lang === "vi" ? "en" : "vi");
    renderLegend();
    if (S.user && !$("app-view").hidden) {
      $("who-scope").textContent = scopeText();
      renderTabs(); fillFilters(); renderList(); renderCounts(S.counts);
      if (S.view === "detail" && S.selected) renderDetail();
      if (S.view === "register") renderRegister();
      if (S.view === "users") renderUsers();
    }
  }
  $("lang-switch").addEventListener("click", function () {
    S.lang = S.lang === "vi" ? "en" : "vi";
    try { window.localStorage.setItem("datso-lang", S.lang); } catch (e) { /* ignore */ }
    applyLang();
  });

  /* -- map ---------------------------------------------------------------------------------------------------- */
  var map = null, mapReady = false, pendingMap = [];
  var EMPTY = { type: "FeatureCollection", features: [] };
  function onMap(fn) { if (mapReady) fn(); else pendingMap.push(fn); }
  function setData(id, data) { onMap(function () { map.getSource(id).setData(data || EMPTY); }); }
  function statusColours() {
    var expr = ["match", ["get", S.layer.status.field]];
    S.layer.status.states.forEach(function (s) { expr.push(s.code, s.colour); });
    expr.push("#607d8b");
    return expr;
  }
  function ensureMap() {
    if (map) { map.resize(); return; }
    var sources = {
      admin: { type: "vector", tiles: [ORIGIN + "/collections/admin_units/tiles/WebMercatorQuad/{z}/{x}/{y}"],
        maxzoom: CONFIG.tileMaxzoom || 16 },
      context: { type: "vector", tiles: [ORIGIN + "/tiles/{z}/{x}/{y}.mvt?layers=" + CONFIG.layers.map(function (l) { return l.id; }).join(",")],
        minzoom: 8, maxzoom: CONFIG.tileMaxzoom || 16 },
      items: { type: "geojson", data: EMPTY }, selected: { type: "geojson", data: EMPTY },
      before: { type: "geojson", data: EMPTY }, conflicts: { type: "geojson", data: EMPTY },
      candidate: { type: "geojson", data: EMPTY }, vertices: { type: "geojson", data: EMPTY }
    };
    var layers = [{ id: "bg", type: "background", paint: { "background-color": "#eef1ec" } }];
    if (CONFIG.basemap) {
      sources.basemap = { type: "raster", tiles: [CONFIG.basemap.url], tileSize: 256, maxzoom: CONFIG.basemap.maxzoom,
        attribution: CONFIG.basemap.attribution };
      layers.push({ id: "basemap", type: "raster", source: "basemap" });
    }
    layers.push(
      { id: "communes", type: "line", source: "admin", "source-layer": "admin_units", filter: ["==", ["get", "level"], "commune"],
        paint: { "line-color": "#78909c", "line-width": 1, "line-dasharray": [3, 2] } },
      { id: "provinces", type: "line", source: "admin", "source-layer": "admin_units", filter: ["==", ["get", "level"], "province"],
        paint: { "line-color": "#37474f", "line-width": 2 } },
      { id: "context-fill", type: "fill", source: "context", "source-layer": CONFIG.layers[0].id,
        paint: { "fill-color": "#52796f", "fill-opacity": 0.18 } },
      { id: "context-line", type: "line", source: "context", "source-layer": CONFIG.layers[0].id,
        paint: { "line-color": "#52796f", "line-width": 0.8 } },
      { id: "context-point", type: "circle", source: "context", "source-layer": CONFIG.layers[CONFIG.layers.length - 1].id,
        filter: ["==", ["geometry-type"], "Point"], paint: { "circle-radius": 3.5, "circle-color": "#52796f", "circle-opacity": 0.6 } },
      { id: "items-fill", type: "fill", source: "items", filter: ["==", ["geometry-type"], "Polygon"],
        paint: { "fill-color": ["match", ["get", "status"], "x", "#000", "#2e7d32"], "fill-opacity": 0.35 } },
      { id: "items-line", type: "line", source: "items", filter: ["==", ["geometry-type"], "Polygon"],
        paint: { "line-color": "#1b4332", "line-width": 1.2 } },
      { id: "items-point", type: "circle", source: "items", filter: ["==", ["geometry-type"], "Point"],
        paint: { "circle-radius": 6, "circle-color": "#2e7d32", "circle-stroke-color": "#fff", "circle-stroke-width": 1.5 } },
      { id: "selected-fill", type: "fill", source: "selected", filter: ["==", ["geometry-type"], "Polygon"],
        paint: { "fill-color": "#ffb300", "fill-opacity": 0.25 } },
      { id: "selected-line", type: "line", source: "selected", paint: { "line-color": "#ffb300", "line-width": 4 } },
      { id: "selected-point", type: "circle", source: "selected", filter: ["==", ["geometry-type"], "Point"],
        paint: { "circle-radius": 9, "circle-color": "rgba(0,0,0,0)", "circle-stroke-color": "#ffb300", "circle-stroke-width": 3 } },
      { id: "before-line", type: "line", source: "before", paint: { "line-color": "#c62828", "line-width": 3, "line-dasharray": [2, 1.5] } },
      { id: "conflicts-fill", type: "fill", source: "conflicts", paint: { "fill-color": "#e53935", "fill-opacity": 0.45 } },
      { id: "conflicts-line", type: "line", source: "conflicts", paint: { "line-color": "#d50000", "line-width": 3 } },
      { id: "candidate-fill", type: "fill", source: "candidate", filter: ["==", ["geometry-type"], "Polygon"],
        paint: { "fill-color": "#1e88e5", "fill-opacity": 0.25 } },
      { id: "candidate-line", type: "line", source: "candidate", paint: { "line-color": "#1565c0", "line-width": 2.5 } },
      { id: "candidate-point", type: "circle", source: "candidate", filter: ["==", ["geometry-type"], "Point"],
        paint: { "circle-radius": 7, "circle-color": "#1e88e5", "circle-stroke-color": "#fff", "circle-stroke-width": 2 } },
      { id: "vertices", type: "circle", source: "vertices",
        paint: { "circle-radius": 5, "circle-color": "#fff", "circle-stroke-color": "#1565c0", "circle-stroke-width": 2 } }
    );
    var opts = { container: "map", style: { version: 8, sources: sources, layers: layers }, attributionControl: false,
      maxPitch: 0, dragRotate: false, center: [106.3, 10.1], zoom: 9 };
    if (CONFIG.bounds) { opts.bounds = CONFIG.bounds; opts.fitBoundsOptions = { padding: 20 }; delete opts.center; delete opts.zoom; }
    map = new maplibregl.Map(opts);
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
    map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
    if (CONFIG.basemap) map.addControl(new maplibregl.AttributionControl({ compact: true }));
    map.on("load", function () {
      mapReady = true;
      paintStatus();
      pendingMap.splice(0).forEach(function (fn) { fn(); });
    });
    map.on("click", onMapClick);
    map.on("mousemove", function (e) {
      if (S.draw) { map.getCanvas().style.cursor = "crosshair"; return; }
      var hit = map.queryRenderedFeatures(e.point, { layers: ["items-fill", "items-point"] });
      map.getCanvas().style.cursor = hit.length ? "pointer" : "";
    });
    window.__officer = { map: map, state: S };
  }
  function paintStatus() {
    if (!mapReady) return;
    map.setPaintProperty("items-fill", "fill-color", statusColours());
    map.setPaintProperty("items-point", "circle-color", statusColours());
  }
  function bboxOf(geoms) {
    var b = [Infinity, Infinity, -Infinity, -Infinity];
    var walk = function (c) {
      if (typeof c[0] === "number") { b[0] = Math.min(b[0], c[0]); b[1] = Math.min(b[1], c[1]); b[2] = Math.max(b[2], c[0]); b[3] = Math.max(b[3], c[1]); }
      else c.forEach(walk);
    };
    geoms.forEach(function (g) {
      if (!g) return;
      if (g.type === "GeometryCollection") g.geometries.forEach(function (x) { walk(x.coordinates); });
      else walk(g.coordinates);
    });
    return isFinite(b[0]) ? b : null;
  }
  function fitTo(geoms, maxZoom) {
    var b = bboxOf(geoms);
    if (!b) return;
    onMap(function () {
      map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 50, maxZoom: maxZoom || 16, duration: 0 });
    });
  }
  function fc(features) { return { type: "FeatureCollection", features: features }; }
  function feature(geom, props) { return { type: "Feature", geometry: geom, properties: props || {} }; }
  function onMapClick(e) {
    if (S.draw) { addVertex(e.lngLat); return; }
    var hit = map.queryRenderedFeatures(e.point, { layers: ["items-fill", "items-point"] });
    if (hit.length && hit[0].properties && hit[0].properties.__id !== undefined) select(Number(hit[0].properties.__id));
  }
  function renderLegend() {
    var box = clear($("legend"));
    box.appendChild(el("div", {}, [el("span", { "class": "sw candidate" }), t("legendCandidate")]));
    box.appendChild(el("div", {}, [el("span", { "class": "sw conflict" }), t("legendConflict")]));
    box.appendChild(el("div", {}, [el("span", { "class": "sw before" }), t("legendBefore")]));
  }

  /* -- drawing: click to add vertices; Done closes the ring ---------------------------------------------------- */
  function isPointLayer() { return !/Polygon/.test(S.layer.geometryType); }
  function startDraw() {
    S.draw = { coords: [] };
    S.candidate = null; setData("conflicts", null);
    map.doubleClickZoom.disable();
    $("draw-bar").hidden = false;
    $("draw-hint").textContent = isPointLayer() ? t("drawHintPoint") : t("drawHintPolygon");
    $("draw-done").hidden = isPointLayer();
    redrawSketch();
  }
  function stopDraw() {
    S.draw = null;
    if (map) { map.doubleClickZoom.enable(); map.getCanvas().style.cursor = ""; }
    $("draw-bar").hidden = true;
    setData("vertices", null);
  }
  function addVertex(ll) {
    if (isPointLayer()) {
      S.candidate = { type: "Point", coordinates: [round6(ll.lng), round6(ll.lat)] };
      stopDraw(); showCandidate(); updateGeomStatus(); return;
    }
    S.draw.coords.push([round6(ll.lng), round6(ll.lat)]);
    redrawSketch();
  }
  function round6(x) { return Math.round(x * 1e7) / 1e7; }
  function redrawSketch() {
    if (!S.draw) return;
    var c = S.draw.coords;
    setData("vertices", fc(c.map(function (p) { return feature({ type: "Point", coordinates: p }); })));
    if (c.length >= 3) setData("candidate", fc([feature({ type: "Polygon", coordinates: [c.concat([c[0]])] })]));
    else if (c.length === 2) setData("candidate", fc([feature({ type: "LineString", coordinates: c })]));
    else setData("candidate", null);
    $("draw-done").disabled = c.length < 3;
  }
  $("draw-undo").addEventListener("click", function () { if (S.draw) { S.draw.coords.pop(); redrawSketch(); } });
  $("draw-clear").addEventListener("click", function () { if (S.draw) { S.draw.coords = []; redrawSketch(); } });
  $("draw-done").addEventListener("click", function () {
    if (!S.draw || S.draw.coords.length < 3) return;
    var c = S.draw.coords;
    S.candidate = { type: "Polygon", coordinates: [c.concat([c[0]])] };
    stopDraw(); showCandidate(); updateGeomStatus();
  });
  function showCandidate() {
    setData("candidate", S.candidate ? fc([feature(S.candidate)]) : null);
  }

  /* geodesic area (m²) on the WGS84 sphere, as turf's ringArea; a centroid that lies inside for the records */
  function ringArea(ring) {
    var R = 6378137, total = 0, rad = Math.PI / 180;
    for (var i = 0; i < ring.length - 1; i++) {
      var p1 = ring[i], p2 = ring[i + 1];
      total += (p2[0] - p1[0]) * rad * (2 + Math.sin(p1[1] * rad) + Math.sin(p2[1] * rad));
    }
    return Math.abs(total * R * R / 2);
  }
  function areaM2(g) {
    if (!g) return 0;
    var polys = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
    return polys.reduce(function (a, p) {
      return a + ringArea(p[0]) - p.slice(1).reduce(function (h, r) { return h + ringArea(r); }, 0);
    }, 0);
  }
  function innerPoint(g) {
    if (!g) return null;
    if (g.type === "Point") return g.coordinates;
    var ring = g.type === "Polygon" ? g.coordinates[0] : g.type === "MultiPolygon" ? g.coordinates[0][0] : null;
    if (!ring) { var b = bboxOf([g]); return b ? [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2] : null; }
    var a = 0, cx = 0, cy = 0;
    for (var i = 0; i < ring.length - 1; i++) {
      var f = ring[i][0] * ring[i + 1][1] - ring[i + 1][0] * ring[i][1];
      a += f; cx += (ring[i][0] + ring[i + 1][0]) * f; cy += (ring[i][1] + ring[i + 1][1]) * f;
    }
    if (Math.abs(a) < 1e-15) return ring[0];
    return [round6(cx / (3 * a)), round6(cy / (3 * a))];
  }

  /* -- tabs, filters, counts, list ---------------------------------------------------------------------------- */
  function renderTabs() {
    var nav = clear($("tabs"));
    CONFIG.layers.forEach(function (layer) {
      nav.appendChild(el("button", { type: "button", "class": "tab", role: "tab", "data-layer": layer.id,
        "aria-selected": String(S.view !== "users" && layer.id === S.layer.id), text: L(layer), onclick: function () {
          if (S.layer.id === layer.id) { showView("list"); renderTabs(); return; }
          S.layer = layer; S.filters = { status: "", crop: "", commune: "" }; S.offset = 0; S.selected = null;
          paintStatus(); fillFilters(); showView("list"); renderTabs(); loadList();
        } }));
    });
    if (S.user && S.user.role === "admin") {      /* user administration (GET/POST/PATCH /admin/users) */
      nav.appendChild(el("button", { type: "button", "class": "tab", role: "tab", "data-view": "users",
        "aria-selected": String(S.view === "users"), text: t("usersTab"), onclick: function () {
          showView("users"); renderTabs(); renderUsers();
        } }));
    }
  }
  function fillSelect(sel, options, value) {
    clear(sel);
    sel.appendChild(el("option", { value: "", text: t("all") }));
    options.forEach(function (o) { sel.appendChild(el("option", { value: o.code, text: o.label })); });
    sel.value = value || "";
  }
  function fillFilters() {
    fillSelect($("f-status"), S.layer.status.states.map(function (s) { return { code: s.code, label: L(s) }; }), S.filters.status);
    var crop = S.layer.cropField && fieldOf(S.layer, S.layer.cropField);
    $("f-crop-box").hidden = !crop;
    fillSelect($("f-crop"), crop ? crop.enum.map(function (o) { return { code: o.code, label: L(o) }; }) : [], S.filters.crop);
    fillSelect($("f-commune"), scopeCommunes().map(function (c) { return { code: c.code, label: c.name }; }), S.filters.commune);
  }
  ["status", "crop", "commune"].forEach(function (k) {
    $("f-" + k).addEventListener("change", function (e) { S.filters[k] = e.target.value; S.offset = 0; loadList(); });
  });
  $("prev").addEventListener("click", function () { S.offset = Math.max(0, S.offset - PAGE); loadList(); });
  $("next").addEventListener("click", function () { S.offset += PAGE; loadList(); });
  $("refresh").addEventListener("click", function () { loadList(); });
  $("new-item").addEventListener("click", function () { openRegister(); });
  document.querySelectorAll(".back").forEach(function (b) {
    b.addEventListener("click", function () { showView("list"); });
  });

  function baseParams() {
    var p = { filter: scopeFilter() };
    if (S.filters.crop && S.layer.cropField) p[S.layer.cropField] = S.filters.crop;
    if (S.filters.commune) p[S.layer.communeField] = S.filters.commune;
    return p;
  }
  function loadList() {
    var seq = ++S.listSeq;
    var p = baseParams();
    p.limit = PAGE; p.offset = S.offset; p.sortby = "-id";
    if (S.filters.status) p[S.layer.status.field] = S.filters.status;
    clear($("items")).appendChild(el("li", { "class": "empty", text: t("loading") }));
    api("GET", "/collections/" + S.layer.id + "/items?" + qs(p)).then(function (res) {
      if (seq !== S.listSeq) return;
      if (!res.ok) { clear($("items")).appendChild(el("li", {}, [problemBox(res)])); return; }
      S.items = res.data.features || [];
      S.matched = res.data.numberMatched !== undefined ? res.data.numberMatched : S.items.length;
      renderList();
      setData("items", fc(S.items.filter(function (f) { return f.geometry; }).map(function (f) {
        var props = Object.assign({}, f.properties, { __id: f.id });
        return feature(f.geometry, props);
      })));
      if (S.view === "list" && S.items.length) fitTo(S.items.map(function (f) { return f.geometry; }), 15);
    });
    loadCounts();
  }
  function loadCounts() {
    var states = S.layer.status.states;
    var p = baseParams();
    p.limit = 1; p.skipGeometry = "true";
    Promise.all(states.map(function (s) {
      var q = Object.assign({}, p); q[S.layer.status.field] = s.code;
      return api("GET", "/collections/" + S.layer.id + "/items?" + qs(q)).then(function (r) {
        return r.ok ? (r.data.numberMatched || 0) : null;
      });
    })).then(function (ns) {
      var counts = {};
      states.forEach(function (s, i) { counts[s.code] = ns[i]; });
      renderCounts(counts);
    });
  }
  function renderCounts(counts) {
    S.counts = counts;
    var box = clear($("counts"));
    if (!counts) return;
    var total = 0;
    Object.keys(counts).forEach(function (k) { total += counts[k] || 0; });
    var chip = function (code, label, n, colour) {
      var dot = el("span", { "class": "dot" });
      if (colour) dot.style.background = colour; else dot.style.background = "#fff";
      return el("button", { type: "button", "class": "chip", "data-status": code, "aria-pressed": String(S.filters.status === code),
        onclick: function () { S.filters.status = code; $("f-status").value = code; S.offset = 0; loadList(); } },
        [dot, label, el("span", { "class": "n", text: fmtNum(n) })]);
    };
    box.appendChild(chip("", t("total"), total, null));
    S.layer.status.states.forEach(function (s) { box.appendChild(chip(s.code, L(s), counts[s.code] || 0, s.colour)); });
  }
  function renderList() {
    var ul = clear($("items"));
    if (!S.items.length) { ul.appendChild(el("li", { "class": "empty", text: t("empty") })); }
    var crop = S.layer.cropField && fieldOf(S.layer, S.layer.cropField);
    S.items.forEach(function (f) {
      var p = f.properties, code = p[S.layer.codeField];
      var bits = [];
      if (crop && p[crop.name]) bits.push(optionLabel(crop, p[crop.name]));
      if (p.name) bits.push(p.name);
      if (p.owner) bits.push(p.owner);
      if (S.layer.areaField && p[S.layer.areaField]) bits.push(fmtNum(p[S.layer.areaField] / 10000, 2) + " ha");
      var commune = CONFIG.communes.filter(function (c) { return c.code === p[S.layer.communeField]; })[0];
      if (commune) bits.push(commune.name);
      ul.appendChild(el("li", {}, [el("button", { type: "button", "class": "item", "data-id": f.id,
        "aria-current": String(!!(S.selected && S.selected.id === f.id)), onclick: function () { select(f.id); } }, [
        el("div", { "class": "row1" }, [el("span", { "class": "code" + (code ? "" : " none"), text: code || t("noCode") + " · #" + f.id }),
          badge(p[S.layer.status.field])]),
        el("div", { "class": "meta", text: bits.join(" · ") })
      ])]));
    });
    var a = S.matched ? S.offset + 1 : 0, b = S.offset + S.items.length;
    $("page-info").textContent = t("pageInfo", { a: fmtNum(a), b: fmtNum(b), n: fmtNum(S.matched) });
    $("prev").disabled = S.offset === 0;
    $("next").disabled = S.offset + PAGE >= S.matched;
  }

  function showView(v) {
    S.view = v;
    ["list", "detail", "register", "users"].forEach(function (x) { $("view-" + x).hidden = x !== v; });
    if (v !== "register") { stopDraw(); S.candidate = null; setData("candidate", null); setData("conflicts", null); }
    if (v !== "detail") { setData("before", null); }
    $("legend").hidden = v === "list" || v === "users";
    if (v === "list") { setData("selected", null); S.selected = null; renderList(); }
  }

  /* -- users (admins): officers, admins, producers and packers --------------------------------------------------- */
  var ROLE_KEYS = { officer: "roleOfficer", admin: "roleAdmin", producer: "roleProducer", packer: "rolePacker" };
  function codesOf(v) { return (v || "").split(/[,;\s]+/).filter(function (x) { return x; }); }
  function userScope(u) {
    var sc = u.scope || {};
    if (u.role === "producer") return t("areasLabel") + ": " + (sc.areas || []).join(", ");
    if (u.role === "packer") return t("facilitiesLabel") + ": " + (sc.facilities || []).join(", ");
    if (sc.national) return t("national");
    var s = t("province") + " " + (sc.provinces || []).join(", ");
    if ((sc.communes || []).length) s += " (" + t("commune") + " " + sc.communes.join(", ") + ")";
    return s;
  }
  function renderUsers() {
    var box = clear($("users"));
    var form = el("form", { id: "user-form", "class": "action-form", novalidate: true });
    var role = el("select", { id: "u-role" }, ["officer", "admin", "producer", "packer"].map(function (r) {
      return el("option", { value: r, text: t(ROLE_KEYS[r]) });
    }));
    var boxes = {
      staff: [inputField("u-provinces", t("provincesField"), el("input", { id: "u-provinces", autocomplete: "off" }), true),
              inputField("u-communes", t("communesField"), el("input", { id: "u-communes", autocomplete: "off" }))],
      producer: [inputField("u-areas", t("areasField"), el("input", { id: "u-areas", autocomplete: "off" }), true)],
      packer: [inputField("u-facilities", t("facilitiesField"), el("input", { id: "u-facilities", autocomplete: "off" }), true)]
    };
    function sync() {
      var r = role.value, kind = r === "producer" || r === "packer" ? r : "staff";
      Object.keys(boxes).forEach(function (k) { boxes[k].forEach(function (b) { b.hidden = k !== kind; }); });
    }
    role.addEventListener("change", sync);
    form.appendChild(el("h3", { text: t("newUser") }));
    form.appendChild(inputField("u-name", t("userName"), el("input", { id: "u-name", required: true, autocomplete: "off", maxlength: "100" }), true));
    form.appendChild(inputField("u-display", t("displayName"), el("input", { id: "u-display", autocomplete: "off", maxlength: "200" })));
    form.appendChild(inputField("u-role", t("role"), role, true));
    boxes.staff.concat(boxes.producer, boxes.packer).forEach(function (b) { form.appendChild(b); });
    form.appendChild(inputField("u-password", t("passwordOptional"), el("input", { id: "u-password", type: "password", autocomplete: "new-password" })));
    var msg = el("div", { id: "user-msg", "aria-live": "polite" });
    form.appendChild(el("button", { type: "submit", "class": "btn primary", id: "u-create", text: t("createUser") }));
    form.appendChild(msg);
    sync();
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var r = role.value, body = { name: $("u-name").value.trim(), role: r };
      if ($("u-display").value.trim()) body.display_name = $("u-display").value.trim();
      if (r === "producer") body.areas = codesOf($("u-areas").value);
      else if (r === "packer") body.facilities = codesOf($("u-facilities").value);
      else { body.provinces = codesOf($("u-provinces").value); body.communes = codesOf($("u-communes").value); }
      if ($("u-password").value) body.password = $("u-password").value;
      clear(msg);
      api("POST", "/admin/users", { json: body }).then(function (res) {
        if (!res.ok) { msg.appendChild(problemBox(res)); return; }
        msg.appendChild(el("div", { "class": "key-once", role: "status" }, [
          el("p", { text: t("keyOnce", { name: res.data.user.name }) }), el("code", { id: "new-key", text: res.data.key })]));
        ["u-name", "u-display", "u-provinces", "u-communes", "u-areas", "u-facilities", "u-password"].forEach(function (id) { $(id).value = ""; });
        refreshUsers();
      });
    });
    box.appendChild(form);
    box.appendChild(el("div", { id: "users-list" }));
    refreshUsers();
  }
  function refreshUsers() {
    var list = clear($("users-list"));
    list.appendChild(el("p", { "class": "hint", text: t("loading") }));
    api("GET", "/admin/users").then(function (res) {
      clear(list);
      if (!res.ok) { list.appendChild(problemBox(res)); return; }
      var rows = (res.data.users || []).map(function (u) {
        var off = u.status !== "active";
        var btn = off || (S.user && u.name === S.user.name) ? null : el("button", { type: "button", "class": "btn danger small",
          "data-disable": u.name, text: t("disableUser"), onclick: function (e) {
            var b = e.currentTarget;
            if (b.getAttribute("data-armed") !== "1") { b.setAttribute("data-armed", "1"); b.textContent = t("confirmDisable"); return; }
            api("PATCH", "/admin/users/" + encodeURIComponent(u.name), { json: { disabled: true }, type: "application/merge-patch+json" })
              .then(function (r2) {
                if (!r2.ok) { toast(problemText(r2)); return; }
                toast(t("userDisabledToast", { name: u.name })); refreshUsers();
              });
          } });
        return el("tr", { "data-user": u.name, "class": off ? "off" : null }, [
          el("td", {}, [el("strong", { text: u.name }), u.display_name ? el("div", { "class": "hint", text: u.display_name }) : null]),
          el("td", { text: t(ROLE_KEYS[u.role] || "role") }),
          el("td", { text: userScope(u) }),
          el("td", {}, [el("span", { text: off ? t("userDisabled") : t("userActive") }),
                        el("div", { "class": "hint", text: t("keysCount", { n: u.active_keys || 0 }) })]),
          el("td", {}, [btn])]);
      });
      list.appendChild(el("div", { "class": "table-wrap" }, [el("table", { "class": "records users" }, [
        el("thead", {}, [el("tr", {}, [t("userName"), t("role"), t("scope"), t("status"), ""].map(function (h) { return el("th", { text: h }); }))]),
        el("tbody", {}, rows)])]));
    });
  }

  /* -- detail, lifecycle actions ------------------------------------------------------------------------------ */
  function select(id) {
    api("GET", "/collections/" + S.layer.id + "/items/" + id).then(function (res) {
      if (!res.ok) { toast(problemText(res)); return; }
      S.selected = res.data; S.etag = res.etag; S.before = null; setData("before", null);
      showView("detail");
      S.selected = res.data;
      setData("selected", res.data.geometry ? fc([feature(res.data.geometry)]) : null);
      if (res.data.geometry) fitTo([res.data.geometry], 17);
      renderDetail();
    });
  }
  function renderDetail() {
    var f = S.selected, p = f.properties, layer = S.layer, box = clear($("detail"));
    var code = p[layer.codeField], st = p[layer.status.field];
    box.appendChild(el("div", { "class": "card" }, [
      el("div", { "class": "detail-head" }, [
        el("h2", { id: "detail-code", "class": code ? "" : "none", text: code || t("noCode") }), badge(st),
        el("span", { "class": "hint", text: "#" + f.id })]),
      p[layer.status.reasonField] ? el("p", { "class": "warning", text: t("reason") + ": " + p[layer.status.reasonField] }) : null,
      detailProps(layer, p)
    ]));
    box.appendChild(actionsCard(st, !!code));
    box.appendChild(subtabsCard());
  }
  function detailProps(layer, p) {
    var dl = el("dl", { "class": "props" });
    layer.fields.forEach(function (f) {
      if (f.name === layer.codeField || f.name === layer.status.field || f.name === layer.status.reasonField || f.name === "synthetic") return;
      if (p[f.name] === null || p[f.name] === undefined || (Array.isArray(p[f.name]) && !p[f.name].length)) return;
      var v = f.name === layer.areaField ? fmtNum(p[f.name], 1) + " m² (" + fmtNum(p[f.name] / 10000, 2) + " ha)" : fmtValue(f, p[f.name]);
      dl.appendChild(el("dt", { text: L(f) })); dl.appendChild(el("dd", { "data-field": f.name, text: v }));
    });
    return dl;
  }
  function actionLabel(from, to, hasCode) {
    if (to === S.layer.activeState) return !hasCode ? t("grant") : from === "expired" ? t("renew") : t("reactivate");
    if (to === "suspended") return t("suspend");
    if (to === "revoked") return t("revoke");
    var s = stateOf(to);
    return s ? L(s) : to;
  }
  function actionsCard(st, hasCode) {
    var card = el("div", { "class": "card" }, [el("h3", { text: t("actions") })]);
    var next = (S.layer.status.transitions[st] || []).filter(function (s) { return s !== "expired"; });
    if (!next.length) { card.appendChild(el("p", { "class": "hint", text: t("noActions") })); return card; }
    var row = el("div", { "class": "actions" });
    var formBox = el("div");
    next.forEach(function (to) {
      var cls = to === "revoked" ? "btn danger" : to === "suspended" ? "btn warn" : "btn primary";
      row.appendChild(el("button", { type: "button", "class": cls, "data-action": to, text: actionLabel(st, to, hasCode),
        onclick: function () { clear(formBox).appendChild(actionForm(st, to, hasCode)); } }));
    });
    card.appendChild(row); card.appendChild(formBox);
    return card;
  }
  function inputField(id, label, input, required) {
    return el("div", { "class": "field" }, [el("label", { "for": id }, [label, required ? el("span", { "class": "req", text: " *" }) : null]), input]);
  }
  function actionForm(from, to, hasCode) {
    var layer = S.layer, needReason = layer.status.reasonStates.indexOf(to) >= 0;
    var needDecision = to === layer.activeState && !hasCode;
    var form = el("form", { "class": "action-form", novalidate: true, "data-target": to });
    var msg = el("div");
    if (needDecision) {
      form.appendChild(el("div", { "class": "grid2" }, [
        inputField("act-decision-no", t("decisionNo"), el("input", { id: "act-decision-no", maxlength: "100", required: true }), true),
        inputField("act-decision-date", t("decisionDate"), el("input", { id: "act-decision-date", type: "date", value: today(), required: true }), true)
      ]));
    }
    if (to === layer.activeState && layer.validityFields.length === 2) {
      form.appendChild(inputField("act-valid-to", t("validTo"), el("input", { id: "act-valid-to", type: "date" }), false));
    }
    if (needReason) {
      form.appendChild(inputField("act-reason", t("reason"), el("textarea", { id: "act-reason", maxlength: "1000", required: true }), true));
    }
    form.appendChild(msg);
    form.appendChild(el("div", { "class": "actions" }, [
      el("button", { type: "submit", "class": to === "revoked" ? "btn danger" : "btn primary", id: "act-confirm", text: actionLabel(from, to, hasCode) + " — " + t("confirm") }),
      el("button", { type: "button", "class": "btn", text: t("cancel"), onclick: function () { form.remove(); } })
    ]));
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      clear(msg);
      var patch = {};
      patch[layer.status.field] = to;
      if (needDecision) {
        var no = $("act-decision-no").value.trim(), date = $("act-decision-date").value;
        if (!no || !date) { msg.appendChild(el("p", { "class": "error", role: "alert", text: t("decisionRequired") })); return; }
        patch[layer.decisionFields[0]] = no; patch[layer.decisionFields[1]] = date;
      }
      if ($("act-valid-to") && $("act-valid-to").value) patch[layer.validityFields[1]] = $("act-valid-to").value;
      if (needReason) {
        var why = $("act-reason").value.trim();
        if (!why) { msg.appendChild(el("p", { "class": "error", role: "alert", text: t("reasonRequired") })); return; }
        patch[layer.status.reasonField] = why;
      }
      var btn = $("act-confirm"); btn.disabled = true;
      api("PATCH", "/collections/" + layer.id + "/items/" + S.selected.id,
        { json: { properties: patch }, type: "application/merge-patch+json", ifMatch: S.etag }).then(function (res) {
        btn.disabled = false;
        if (res.status === 412) { toast(t("stale")); select(S.selected.id); return; }
        if (!res.ok) { msg.appendChild(problemBox(res)); return; }
        var id = S.selected.id;
        api("GET", "/collections/" + layer.id + "/items/" + id).then(function (r2) {
          if (!r2.ok) return;
          S.selected = r2.data; S.etag = r2.etag;
          var code = r2.data.properties[layer.codeField];
          toast(needDecision && code ? t("granted", { code: code }) : t("changed", { s: L(stateOf(to)) }));
          renderDetail(); loadListQuiet();
        });
      });
    });
    return form;
  }
  function loadListQuiet() {
    var v = S.view; loadList(); S.view = v;
  }

  /* -- history and records ------------------------------------------------------------------------------------ */
  function subtabsCard() {
    var card = el("div", { "class": "card" });
    var tabs = [{ id: "history", label: t("history") }]
      .concat(S.layer.records.map(function (r) { return { id: r.id, label: L(r) }; }))
      .concat(S.layer.relations.map(function (r) { return { id: "rel:" + r.name, label: L(r) }; }));
    if (!tabs.some(function (x) { return x.id === S.subtab; })) S.subtab = "history";
    var bar = el("div", { "class": "subtabs", role: "tablist" });
    var body = el("div", { id: "subtab-body" });
    tabs.forEach(function (tb) {
      bar.appendChild(el("button", { type: "button", "class": "subtab", role: "tab", "data-subtab": tb.id,
        "aria-selected": String(tb.id === S.subtab), text: tb.label, onclick: function () {
          S.subtab = tb.id;
          bar.querySelectorAll(".subtab").forEach(function (b) { b.setAttribute("aria-selected", String(b.dataset.subtab === tb.id)); });
          loadSubtab(body);
        } }));
    });
    card.appendChild(bar); card.appendChild(body);
    loadSubtab(body);
    return card;
  }
  function loadSubtab(body) {
    clear(body).appendChild(el("p", { "class": "hint", text: t("loading") }));
    if (S.subtab === "history") loadHistory(body);
    else if (S.subtab.indexOf("rel:") === 0) loadRelation(body, S.layer.relations.filter(function (r) { return "rel:" + r.name === S.subtab; })[0]);
    else loadRecords(body, S.layer.records.filter(function (r) { return r.id === S.subtab; })[0]);
  }
  function showValue(v, f) {
    if (v === null || v === undefined) return "∅";
    if (f) return fmtValue(f, v);
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }
  function loadHistory(body) {
    var id = S.selected.id;
    api("GET", "/collections/" + S.layer.id + "/items/" + id + "/history?limit=50").then(function (res) {
      if (!S.selected || S.selected.id !== id) return;
      clear(body);
      if (!res.ok) { body.appendChild(problemBox(res)); return; }
      var entries = res.data.entries || [];
      if (!entries.length) { body.appendChild(el("p", { "class": "hint", text: t("historyEmpty") })); return; }
      var ul = el("ul", { "class": "history" });
      entries.forEach(function (e) {
        var act = e.action === "insert" || e.action === "create" ? t("actCreate") : e.action === "delete" ? t("actDelete") : t("actUpdate");
        var li = el("li", {}, [
          el("div", { "class": "when", text: fmtDateTime(e.at) + (e.actor ? " · " + t("by") + " " + e.actor : "") }),
          el("div", { "class": "what", text: act })
        ]);
        var tr = e.transition, moved = tr ? tr.fromLabel + " → " + tr.toLabel : null;
        if (tr) {            /* the status change, with the page's labels (the raw codes are in e.transition) */
          var a = stateOf(tr.from), b = stateOf(tr.to);
          li.appendChild(el("div", { "class": "reason", text: (a ? L(a) : tr.fromLabel || "—") + " → " + (b ? L(b) : tr.toLabel || "—") }));
        }
        if (e.reason && e.reason !== moved) li.appendChild(el("div", { "class": "reason", text: t("reason") + ": " + e.reason }));
        var blank = function (v) { return v === null || v === undefined || v === "" || (Array.isArray(v) && !v.length); };
        var created = e.action === "insert";
        var rows = (e.changes || []).filter(function (c) {
          return c.field !== "synthetic" && !(blank(c.before) && blank(c.after));
        });
        if (rows.length) {
          var tb = el("table");
          rows.forEach(function (c) {
            var f = fieldOf(S.layer, c.field);
            tb.appendChild(el("tr", {}, [el("td", { "class": "hfield", text: c.title || c.field }),
              el("td", {}, created ? [el("span", { text: showValue(c.after, f) })]
                : [el("span", { "class": "before", text: showValue(c.before, f) }), " → ", el("span", { "class": "after", text: showValue(c.after, f) })])]));
          });
          li.appendChild(tb);
        }
        if (e.geometryChanged && !created) li.appendChild(el("div", { "class": "hint", text: t("geometryChanged") }));
        if (e.geometryBefore) {
          var btn = el("button", { type: "button", "class": "btn small", "data-before": "1", text: t("showBefore") });
          btn.addEventListener("click", function () {
            var on = S.before === e;
            S.before = on ? null : e;
            body.querySelectorAll("[data-before]").forEach(function (b) { b.textContent = t("showBefore"); });
            if (on) { setData("before", null); return; }
            btn.textContent = t("hideBefore");
            setData("before", fc([feature(e.geometryBefore)]));
            fitTo([e.geometryBefore, S.selected.geometry], 17);
          });
          li.appendChild(btn);
        }
        ul.appendChild(li);
      });
      body.appendChild(ul);
    });
  }
  /* a many-to-many link (a packing house's source growing areas): the codes, replaced as a whole (audited) */
  function loadRelation(body, rel) {
    var id = S.selected.id, path = "/collections/" + S.layer.id + "/items/" + id + "/" + rel.name;
    api("GET", path).then(function (res) {
      if (!S.selected || S.selected.id !== id) return;
      clear(body);
      if (!res.ok) { body.appendChild(problemBox(res)); return; }
      var codes = (res.data.items || []).map(function (x) { return x.code || "#" + x.id; });
      body.appendChild(codes.length ? el("ul", { "class": "conflicts", id: "relation-list" }, codes.map(function (c) { return el("li", { text: c }); }))
        : el("p", { "class": "hint", text: t("recordsEmpty") }));
      var area = el("textarea", { id: "relation-codes", maxlength: "20000" });
      area.value = codes.filter(function (c) { return c[0] !== "#"; }).join("\n");
      var msg = el("div");
      var form = el("form", { "class": "action-form", novalidate: true }, [
        inputField("relation-codes", t("relationCodes"), area, false), msg,
        el("button", { type: "submit", "class": "btn primary", id: "relation-save", text: t("save") })]);
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        clear(msg);
        var wanted = area.value.split(/[\s,;]+/).filter(Boolean);
        api("PUT", path, { json: { ids: wanted } }).then(function (r) {
          if (!r.ok) { msg.appendChild(problemBox(r)); return; }
          toast(t("recordSaved")); loadRelation(body, rel);
        });
      });
      body.appendChild(form);
    });
  }
  function loadRecords(body, rec) {
    var id = S.selected.id, p = { limit: 50 };
    p[rec.link] = id;
    if (rec.dateField) p.sortby = "-" + rec.dateField;
    p.skipGeometry = "true";
    api("GET", "/collections/" + rec.id + "/items?" + qs(p)).then(function (res) {
      if (!S.selected || S.selected.id !== id) return;
      clear(body);
      body.appendChild(el("div", { "class": "toolbar" }, [el("button", { type: "button", "class": "btn small primary", "data-add": rec.id,
        text: t("add"), onclick: function () { formBox.hidden = !formBox.hidden; } })]));
      var formBox = recordForm(rec, body);
      formBox.hidden = true;
      body.appendChild(formBox);
      if (!res.ok) { body.appendChild(problemBox(res)); return; }
      var feats = res.data.features || [];
      if (!feats.length) { body.appendChild(el("p", { "class": "hint", text: t("recordsEmpty") })); return; }
      var cols = rec.fields.filter(function (f) { return f.type !== "array" && f.public; }).slice(0, 4);
      var table = el("table", { "class": "records" }, [el("tr", {}, cols.map(function (f) { return el("th", { text: L(f) }); }))]);
      feats.forEach(function (ft) {
        table.appendChild(el("tr", {}, cols.map(function (f) { return el("td", { text: fmtValue(f, ft.properties[f.name]) }); })));
      });
      body.appendChild(table);
    });
  }
  function recordForm(rec, body) {
    var form = el("form", { "class": "action-form", novalidate: true, "data-record-form": rec.id });
    var inputs = {};
    rec.fields.forEach(function (f) {
      var fe = formField(f, "rec-" + rec.id + "-" + f.name);
      inputs[f.name] = fe; form.appendChild(fe.node);
    });
    var msg = el("div");
    form.appendChild(msg);
    form.appendChild(el("button", { type: "submit", "class": "btn primary", text: t("save") }));
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      clear(msg);
      var props = {}, bad = false;
      Object.keys(inputs).forEach(function (k) {
        var v = inputs[k].read();
        if (v !== null && v !== undefined && !(typeof v === "number" && isNaN(v))) props[k] = v;
        else if (typeof v === "number") bad = true;
        inputs[k].setError(typeof v === "number" && isNaN(v) ? "?" : null);
      });
      if (bad) return;
      props[rec.link] = S.selected.id;
      var pt = innerPoint(S.selected.geometry);
      var body2 = { type: "Feature", geometry: pt ? { type: "Point", coordinates: pt } : null, properties: props };
      api("POST", "/collections/" + rec.id + "/items", { json: body2, type: "application/geo+json" }).then(function (res) {
        if (!res.ok) { showFieldErrors(inputs, res); msg.appendChild(problemBox(res)); return; }
        toast(t("recordSaved"));
        loadSubtab(body);
      });
    });
    return form;
  }

  /* -- form fields from the registry ------------------------------------------------------------------------ */
  function formField(f, id) {
    var input, read;
    var label = L(f);
    if (f.enum) {
      input = el("select", { id: id, name: f.name });
      input.appendChild(el("option", { value: "", text: "—" }));
      f.enum.forEach(function (o) { input.appendChild(el("option", { value: o.code, text: L(o) })); });
      read = function () { return input.value || null; };
    } else if (f.type === "array" && f.items) {
      input = el("div", { "class": "checks", id: id, role: "group" });
      f.items.forEach(function (o) {
        input.appendChild(el("label", {}, [el("input", { type: "checkbox", value: o.code, name: f.name }), L(o) === o.code ? o.code : L(o) + " (" + o.code + ")"]));
      });
      read = function () {
        var v = Array.prototype.map.call(input.querySelectorAll("input:checked"), function (c) { return c.value; });
        return v.length ? v : null;
      };
    } else if (f.type === "array") {
      input = el("input", { id: id, name: f.name, inputmode: "numeric", placeholder: t("months") });
      read = function () {
        var s = input.value.trim();
        if (!s) return null;
        return s.split(/[,;\s]+/).filter(Boolean).map(function (x) { return Number(x); });
      };
    } else if (f.name === S.layer.communeField && f.name !== undefined && !f.references) {
      input = el("select", { id: id, name: f.name });
      input.appendChild(el("option", { value: "", text: t("autoCommune") }));
      scopeCommunes().forEach(function (c) { input.appendChild(el("option", { value: c.code, text: c.name + " (" + c.code + ")" })); });
      read = function () { return input.value || null; };
    } else if (f.type === "date") {
      input = el("input", { id: id, name: f.name, type: "date" });
      read = function () { return input.value || null; };
    } else if (f.type === "number" || f.type === "integer") {
      input = el("input", { id: id, name: f.name, inputmode: "decimal", placeholder: f.computed ? t("computed") : (S.lang === "vi" ? "1.250,5" : "1,250.5") });
      read = function () { return parseNum(input.value); };
    } else if (f.type === "boolean") {
      input = el("select", { id: id, name: f.name }, [el("option", { value: "", text: "—" }), el("option", { value: "true", text: t("yes") }), el("option", { value: "false", text: t("no") })]);
      read = function () { return input.value === "" ? null : input.value === "true"; };
    } else {
      input = f.name === "notes" || f.name === "findings" ? el("textarea", { id: id, name: f.name, maxlength: "2000" })
        : el("input", { id: id, name: f.name, maxlength: f.maxLength ? String(f.maxLength) : "500" });
      read = function () { var v = input.value.trim(); return v === "" ? null : v; };
    }
    var errNode = el("div", { "class": "field-error", role: "alert", hidden: true });
    var node = el("div", { "class": "field", "data-field": f.name }, [
      el("label", { "for": id }, [label, f.required && !f.computed && f.name !== S.layer.communeField ? el("span", { "class": "req", text: " *" }) : null]), input, errNode]);
    return { node: node, input: input, read: read, setError: function (text) {
      node.classList.toggle("invalid", !!text); errNode.hidden = !text; errNode.textContent = text || "";
    } };
  }
  function showFieldErrors(inputs, res) {
    var errs = ((res.data || {}).errors || []).slice();
    if (res.data && res.data.field && !errs.some(function (e) { return e.field === res.data.field; })) errs.push({ field: res.data.field, message: res.data.detail });
    errs.forEach(function (e) { if (e.field && inputs[e.field]) inputs[e.field].setError(e.message); });
  }

  /* -- registration ------------------------------------------------------------------------------------------- */
  var REG = null;   // the register view's inputs
  function openRegister() {
    S.candidate = null; S.registerMode = "draw";
    showView("register"); renderRegister();
  }
  function renderRegister() {
    var layer = S.layer, box = clear($("register"));
    var values = {};
    if (REG) Object.keys(REG.inputs).forEach(function (k) { try { values[k] = REG.inputs[k].input.value; } catch (e) { /* ignore */ } });
    box.appendChild(el("h2", { "class": "reg-title", text: t("registerHeading", { layer: L(layer) }) }));
    var modes = el("div", { "class": "modes", role: "tablist" });
    [["draw", t("modeDraw")], ["upload", t("modeUpload")]].forEach(function (m) {
      modes.appendChild(el("button", { type: "button", "class": "subtab", role: "tab", "data-mode": m[0], "aria-selected": String(S.registerMode === m[0]),
        text: m[1], onclick: function () { S.registerMode = m[0]; stopDraw(); renderRegister(); } }));
    });
    box.appendChild(modes);
    var result = el("div", { id: "reg-result", "aria-live": "polite" });
    REG = { inputs: {}, result: result };
    if (S.registerMode === "upload") {
      box.appendChild(uploadCard(result));
      box.appendChild(result);
      return;
    }
    var geomCard = el("div", { "class": "card" }, [
      el("div", { id: "geom-status", "class": "geom-status" }),
      el("button", { type: "button", "class": "btn", id: "draw-start", text: isPointLayer() ? t("drawPoint") : (S.candidate ? t("drawAgain") : t("drawStart")),
        onclick: function () { startDraw(); } })
    ]);
    box.appendChild(geomCard);
    var form = el("form", { "class": "card", id: "reg-form", novalidate: true });
    layer.form.forEach(function (name) {
      var f = fieldOf(layer, name);
      var fe = formField(f, "reg-" + name);
      REG.inputs[name] = fe;
      if (values[name] !== undefined && fe.input.tagName !== "DIV") fe.input.value = values[name];
      form.appendChild(fe.node);
    });
    if (layer.cropField && REG.inputs[layer.cropField]) REG.inputs[layer.cropField].input.addEventListener("change", updateGeomStatus);
    form.appendChild(el("button", { type: "submit", "class": "btn primary wide", id: "reg-submit", text: t("submitDraft") }));
    form.addEventListener("submit", function (ev) { ev.preventDefault(); submitDraft(false); });
    box.appendChild(form);
    box.appendChild(result);
    updateGeomStatus();
    showCandidate();
  }
  function minimumHa() {
    var layer = S.layer;
    if (!layer.cropField || !REG || !REG.inputs[layer.cropField]) return null;
    var crop = REG.inputs[layer.cropField].read();
    if (!crop) return null;
    var cls = CONFIG.cropClasses[crop], m = CONFIG.minAreaHa, best = null;
    [cls, crop].forEach(function (k) { if (k && m[k] !== undefined && (best === null || m[k] > best)) best = m[k]; });
    return best === null ? null : { crop: optionLabel(fieldOf(layer, layer.cropField), crop), ha: best };
  }
  function updateGeomStatus() {
    var box = $("geom-status");
    if (!box) return;
    clear(box);
    var g = S.candidate;
    if (!g) { box.textContent = t("noGeometry"); }
    else if (g.type === "Point") { box.textContent = t("geomPoint", { lat: fmtNum(g.coordinates[1], 6), lon: fmtNum(g.coordinates[0], 6) }); }
    else {
      var m2 = areaM2(g);
      var n = g.type === "Polygon" ? g.coordinates[0].length - 1 : g.coordinates.reduce(function (a, p) { return a + p[0].length - 1; }, 0);
      box.appendChild(el("div", { text: t("geomArea", { n: n, m2: fmtNum(m2, 0), ha: fmtNum(m2 / 10000, 2) }) }));
      var min = minimumHa();
      if (min) {
        box.appendChild(el("div", { "class": m2 / 10000 < min.ha ? "field-error" : "hint",
          text: t("minimum", { crop: min.crop, ha: fmtNum(min.ha) }) + (m2 / 10000 < min.ha ? " — " + t("belowMinimum", { ha: fmtNum(min.ha) }) : "") }));
      }
    }
    var btn = $("draw-start");
    if (btn && !isPointLayer()) btn.textContent = g ? t("drawAgain") : t("drawStart");
  }
  function submitDraft(repair) {
    var layer = S.layer, result = REG.result, props = {}, bad = false;
    clear(result);
    Object.keys(REG.inputs).forEach(function (k) {
      var v = REG.inputs[k].read();
      REG.inputs[k].setError(null);
      if (typeof v === "number" && isNaN(v)) { REG.inputs[k].setError(S.lang === "vi" ? "Số không hợp lệ" : "Not a number"); bad = true; return; }
      if (v !== null && v !== undefined) props[k] = v;
    });
    if (bad) return;
    if (!S.candidate) { result.appendChild(el("p", { "class": "error", role: "alert", text: t("noGeometry") })); return; }
    var btn = $("reg-submit"); btn.disabled = true; btn.textContent = t("submitting");
    setData("conflicts", null);
    var body = { type: "Feature", geometry: S.candidate, properties: props };
    api("POST", "/collections/" + layer.id + "/items" + (repair ? "?repair=true" : ""), { json: body, type: "application/geo+json" }).then(function (res) {
      btn.disabled = false; btn.textContent = t("submitDraft");
      if (!res.ok) { registrationProblem(res, REG.inputs, result, true); return; }
      var id = res.data && res.data.id;
      if (id === undefined) { var loc = res.location || ""; id = Number(loc.split("/").pop()); }
      result.appendChild(el("p", { "class": "success", text: t("created", { id: id }) }));
      warningsBox(result, res.data && res.data.warnings);
      S.candidate = null; setData("candidate", null);
      S.filters.status = ""; S.offset = 0; $("f-status").value = "";
      loadList();
      setTimeout(function () { select(id); }, 50);
    });
  }
  function warningsBox(node, warnings) {
    if (!warnings || !warnings.length) return;
    node.appendChild(el("div", { "class": "warning" }, [el("strong", { text: t("warnings") + ": " }),
      el("ul", { "class": "conflicts" }, warnings.map(function (w) {
        return el("li", { text: (w.row ? t("row") + " " + w.row + ", " : "") + (w.field ? w.field + ": " : "") + (w.message || "") });
      }))]));
  }
  function registrationProblem(res, inputs, result, offerRepair) {
    if (inputs) showFieldErrors(inputs, res);
    result.appendChild(problemBox(res));
    var d = res.data || {};
    if (offerRepair && d.repaired_geometry) {
      result.appendChild(el("button", { type: "button", "class": "btn", id: "accept-repair",
        text: t("repairOffer", { m2: fmtNum(d.repaired_area_m2, 0) }), onclick: function () {
          S.candidate = d.repaired_geometry; showCandidate(); updateGeomStatus(); submitDraft(true);
        } }));
    }
    if (res.status === 409) highlightConflicts(res, result);
  }
  /* the 409 names each conflicting area by its code (or #id when it is a draft): find them and paint them red */
  function highlightConflicts(res, result) {
    var d = res.data || {}, text = [d.detail || ""].concat((d.errors || []).map(function (e) { return e.message || ""; })).join(" ");
    var ids = [], codes = [];
    text.replace(/#(\d+)/g, function (m, id) { if (ids.indexOf(id) < 0) ids.push(id); return m; });
    text.split(/[\s,;()]+/).forEach(function (tok) {
      tok = tok.replace(/[.:]+$/, "");
      if (tok.length >= 5 && /\d/.test(tok) && /[-\/]/.test(tok) && codes.indexOf(tok) < 0) codes.push(tok);
    });
    var layer = S.layer;
    var gets = ids.slice(0, 10).map(function (id) { return api("GET", "/collections/" + layer.id + "/items/" + id); })
      .concat(codes.slice(0, 10).map(function (c) {
        var p = { limit: 1 }; p[layer.codeField] = c;
        return api("GET", "/collections/" + layer.id + "/items?" + qs(p));
      }));
    Promise.all(gets).then(function (rs) {
      var found = [];
      rs.forEach(function (r) {
        if (!r.ok || !r.data) return;
        (r.data.type === "Feature" ? [r.data] : r.data.features || []).forEach(function (f) {
          if (f.geometry && !found.some(function (x) { return x.id === f.id; })) found.push(f);
        });
      });
      S.conflicts = found;
      setData("conflicts", fc(found.map(function (f) { return feature(f.geometry, { id: f.id, code: f.properties[layer.codeField] || "" }); })));
      if (!found.length) return;
      var ul = el("ul", { "class": "conflicts", id: "conflict-list" });
      found.forEach(function (f) {
        var code = f.properties[layer.codeField] || "#" + f.id;
        ul.appendChild(el("li", {}, [el("strong", { "class": "conflict-code", text: code }), " ", badge(f.properties[layer.status.field]), " ",
          el("button", { type: "button", "class": "btn small", text: t("view"), onclick: function () { fitTo([f.geometry], 17); } })]));
      });
      result.appendChild(el("div", { "class": "warning" }, [el("strong", { text: t("conflictsWith") }), ul]));
      fitTo(found.map(function (f) { return f.geometry; }).concat(S.candidate ? [S.candidate] : []), 17);
    });
  }
  function uploadCard(result) {
    var file = el("input", { type: "file", id: "upload-file", "class": "file-native", accept: ".zip,.gpkg,.geojson,.json,.kml" });
    var fileName = el("span", { "class": "file-name", text: t("noFile") });
    var picker = el("div", { "class": "file-picker" }, [
      el("label", { "class": "btn", "for": "upload-file", text: t("pickFile") }), fileName, file]);
    var crs = el("input", { id: "upload-crs", placeholder: "EPSG:4326, vn2000:ben-tre…", maxlength: "60" });
    var info = el("p", { "class": "hint", id: "upload-info" });
    file.addEventListener("change", function () {
      fileName.textContent = file.files.length ? file.files[0].name : t("noFile");
      previewFile(file.files[0], info);
    });
    var btn = el("button", { type: "submit", "class": "btn primary wide", id: "upload-submit", text: t("upload") });
    var form = el("form", { "class": "card", id: "upload-form", novalidate: true }, [
      el("div", { "class": "field" }, [el("span", { "class": "label" }, [t("uploadFile"), el("span", { "class": "req", text: " *" })]), picker]), el("p", { "class": "hint", text: t("uploadHint") }), info,
      el("details", {}, [el("summary", { text: t("crsLabel") }), el("div", { "class": "field" }, [crs])]), btn
    ]);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      clear(result); setData("conflicts", null);
      if (!file.files.length) { result.appendChild(el("p", { "class": "error", role: "alert", text: t("chooseFile") })); return; }
      var data = new FormData();
      data.append("file", file.files[0], file.files[0].name);
      if (crs.value.trim()) data.append("crs", crs.value.trim());
      btn.disabled = true; btn.textContent = t("submitting");
      api("POST", "/collections/" + S.layer.id + "/imports", { form: data }).then(function (res) {
        btn.disabled = false; btn.textContent = t("upload");
        if (!res.ok) { registrationProblem(res, null, result, false); return; }
        result.appendChild(el("p", { "class": "success", text: t("uploaded", { n: fmtNum(res.data.rows_written) }) }));
        warningsBox(result, res.data.warnings);
        S.filters.status = S.layer.draftState; S.offset = 0; $("f-status").value = S.layer.draftState;
        loadList();
      });
    });
    return form;
  }
  /* GeoJSON and KML are drawn before the upload (the server checks them; zipped Shapefiles and GeoPackages are
   * read there only) */
  function previewFile(f, info) {
    S.candidate = null; setData("candidate", null); info.textContent = "";
    if (!f || !/\.(geojson|json|kml)$/i.test(f.name) || f.size > 5e6) return;
    f.text().then(function (text) {
      var geoms = [];
      try {
        if (/\.kml$/i.test(f.name)) {
          var doc = new DOMParser().parseFromString(text, "application/xml");
          Array.prototype.forEach.call(doc.getElementsByTagName("Polygon"), function (p) {
            var rings = Array.prototype.map.call(p.getElementsByTagName("coordinates"), function (c) {
              return c.textContent.trim().split(/\s+/).map(function (xy) { var a = xy.split(","); return [Number(a[0]), Number(a[1])]; });
            });
            geoms.push({ type: "Polygon", coordinates: rings });
          });
          Array.prototype.forEach.call(doc.getElementsByTagName("Point"), function (p) {
            var a = p.getElementsByTagName("coordinates")[0].textContent.trim().split(",");
            geoms.push({ type: "Point", coordinates: [Number(a[0]), Number(a[1])] });
          });
        } else {
          var gj = JSON.parse(text);
          var feats = gj.type === "FeatureCollection" ? gj.features : gj.type === "Feature" ? [gj] : [{ geometry: gj }];
          feats.forEach(function (x) { if (x && x.geometry) geoms.push(x.geometry); });
        }
      } catch (e) { return; }
      var lonlat = geoms.filter(function (g) { var b = bboxOf([g]); return b && b[0] >= -180 && b[2] <= 180 && b[1] >= -90 && b[3] <= 90; });
      if (!lonlat.length) return;
      setData("candidate", fc(lonlat.map(function (g) { return feature(g); })));
      S.candidate = lonlat.length === 1 ? lonlat[0] : null;
      info.textContent = t("preview", { n: lonlat.length });
      fitTo(lonlat, 17);
    });
  }

  /* -- start ------------------------------------------------------------------------------------------------ */
  applyLang();
  if (S.token && S.user) {
    api("GET", "/auth/me").then(function (res) {
      if (res.ok) { S.user = res.data; signedIn(); } else if (res.status !== 401) { signedIn(); }
    });
  } else {
    showLogin("");
  }
})();
