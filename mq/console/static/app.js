/* mq console: a small hand-written front end over /api/ (no framework, no build step, nothing fetched
   from elsewhere). Every value from the server is put into the page as text (textContent), never as HTML. */
"use strict";

var session = { csrf: "", maxMessages: 200 };
var timers = [];          // cleared when the page changes
var COLORS = ["#2458c6", "#e8590c", "#2f9e44", "#ae3ec9", "#f08c00", "#1098ad", "#c2255c", "#5c940d", "#495057", "#7048e8"];

// ------------------------------------------------------------------------------------------ helpers

function h(tag, attrs) {
  var el = document.createElement(tag);
  attrs = attrs || {};
  Object.keys(attrs).forEach(function (k) {
    var v = attrs[k];
    if (v === null || v === undefined || v === false) return;
    if (k === "text") el.textContent = String(v);
    else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  });
  for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
  return el;
}

function append(el, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) { child.forEach(function (c) { append(el, c); }); return; }
  el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
}

function svg(tag, attrs) {
  var el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  Object.keys(attrs || {}).forEach(function (k) {
    if (k === "text") el.textContent = attrs[k]; else el.setAttribute(k, attrs[k]);
  });
  return el;
}

function query(params) {
  var parts = [];
  Object.keys(params || {}).forEach(function (k) {
    var v = params[k];
    if (v !== undefined && v !== null && v !== "") parts.push(encodeURIComponent(k) + "=" + encodeURIComponent(v));
  });
  return parts.length ? "?" + parts.join("&") : "";
}

function request(method, path, params) {
  var init = { method: method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
  var url = "/api/" + path;
  if (method === "GET") url += query(params);
  else {
    init.headers["Content-Type"] = "application/json";
    init.headers["X-CSRF-Token"] = session.csrf;
    init.body = JSON.stringify(params || {});
  }
  return fetch(url, init).then(function (resp) {
    return resp.json().catch(function () { return { error: "HTTP " + resp.status }; }).then(function (data) {
      if (resp.status === 401 && data && data.loginRequired && location.hash.indexOf("#/login") !== 0) {
        location.hash = "#/login/" + encodeURIComponent(location.hash.slice(2));
      }
      if (!resp.ok) throw new Error((data && data.error) || ("HTTP " + resp.status));
      return data;
    });
  });
}
function get(path, params) { return request("GET", path, params); }
function post(path, body) { return request("POST", path, body); }

function flash(text, kind) {
  var box = h("div", { "class": kind || "ok", text: text });
  document.getElementById("flash").appendChild(box);
  setTimeout(function () { box.remove(); }, kind === "error" ? 9000 : 4000);
}

/* An error shown in ``where`` (and flashed, unless ``quiet``: pages that poll would flash it every round). */
function fail(where, quiet) {
  return function (e) {
    if (!quiet) flash(e.message, "error");
    if (where) { where.textContent = ""; where.appendChild(h("p", { "class": "error", text: e.message })); }
  };
}

function fmtTime(ms) {
  if (!ms || ms <= 0) return "";
  var d = new Date(ms), p = function (n) { return (n < 10 ? "0" : "") + n; };
  return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" +
    p(d.getMinutes()) + ":" + p(d.getSeconds());
}
function fmtNum(v, digits) {
  if (v === null || v === undefined || v === "") return "-";
  if (typeof v === "number" && digits !== undefined) return v.toFixed(digits);
  return String(v);
}

/* columns: [{label, key | value(row), num, link(row) -> href}] */
function table(columns, rows, empty) {
  var head = h("tr", null, columns.map(function (c) { return h("th", { "class": c.num ? "num" : null, text: c.label }); }));
  var body = rows.map(function (r) {
    return h("tr", null, columns.map(function (c) {
      var v = c.value ? c.value(r) : r[c.key];
      var cell = h("td", { "class": c.num ? "num" : (c.mono ? "mono" : null) });
      if (v instanceof Node) cell.appendChild(v);
      else if (c.link) cell.appendChild(h("a", { href: c.link(r), text: fmtNum(v) }));
      else cell.textContent = fmtNum(v, c.digits);
      return cell;
    }));
  });
  if (!rows.length) body = [h("tr", null, h("td", { colspan: columns.length, "class": "muted", text: empty || "nothing to show" }))];
  return h("table", null, h("thead", null, head), h("tbody", null, body));
}

function kvTable(obj) {
  return h("table", { "class": "kv" }, h("tbody", null, Object.keys(obj || {}).map(function (k) {
    var v = obj[k];
    return h("tr", null, h("td", { text: k }), h("td", { "class": "mono", text: typeof v === "object" ? JSON.stringify(v) : fmtNum(v) }));
  })));
}

function field(label, input) { return h("label", null, label, input); }
function every(seconds, fn) { fn(); timers.push(setInterval(fn, seconds * 1000)); }
function page(title) {
  var main = document.getElementById("main");
  main.textContent = "";
  main.appendChild(h("h1", { text: title }));
  return main;
}
function section(parent, title) {
  var box = h("div", { "class": "card" }, title ? h("h2", { text: title }) : null);
  parent.appendChild(box);
  var body = h("div", null, h("p", { "class": "muted", text: "Loading…" }));
  box.appendChild(body);
  return body;
}
function fill(target, node) { target.textContent = ""; append(target, node); }

// ------------------------------------------------------------------------------------------ charts

/* series: {name: [[t, v], ...]}: one line each, drawn into an SVG by hand. */
function lineChart(series, unit) {
  var W = 760, H = 260, L = 54, R = 12, T = 12, B = 28;
  var chart = svg("svg", { "class": "chart", viewBox: "0 0 " + W + " " + H, role: "img" });
  var names = Object.keys(series), t0 = Infinity, t1 = -Infinity, vmax = 0;
  names.forEach(function (n) {
    series[n].forEach(function (p) { t0 = Math.min(t0, p[0]); t1 = Math.max(t1, p[0]); vmax = Math.max(vmax, p[1]); });
  });
  if (!isFinite(t0)) {
    chart.appendChild(svg("text", { x: W / 2 - 60, y: H / 2, text: "no samples yet" }));
    return h("div", null, chart);
  }
  if (t1 === t0) t1 = t0 + 1000;
  vmax = niceMax(vmax);
  var x = function (t) { return L + (t - t0) / (t1 - t0) * (W - L - R); };
  var y = function (v) { return T + (1 - v / vmax) * (H - T - B); };
  for (var i = 0; i <= 4; i++) {
    var v = vmax * i / 4;
    chart.appendChild(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#eceff4" }));
    chart.appendChild(svg("text", { x: 4, y: y(v) + 4, text: fmtShort(v) }));
  }
  [t0, (t0 + t1) / 2, t1].forEach(function (t, j) {
    var d = new Date(t), s = d.toTimeString().slice(0, 8);
    chart.appendChild(svg("text", { x: j === 0 ? L : (j === 1 ? (L + W - R) / 2 - 24 : W - R - 50), y: H - 8, text: s }));
  });
  var legend = h("div", { "class": "legend" });
  names.forEach(function (n, k) {
    var color = COLORS[k % COLORS.length];
    var pts = series[n].map(function (p) { return x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1); }).join(" ");
    chart.appendChild(svg("polyline", { points: pts, fill: "none", stroke: color, "stroke-width": 2 }));
    var last = series[n].length ? series[n][series[n].length - 1][1] : 0;
    legend.appendChild(h("span", null, h("i", { style: null }), n + " " + fmtShort(last) + (unit ? " " + unit : "")));
    legend.lastChild.firstChild.style.background = color;
  });
  return h("div", null, chart, legend);
}

function sparkline(values) {
  var W = 160, H = 28, chart = svg("svg", { "class": "spark", viewBox: "0 0 " + W + " " + H });
  if (values.length < 2) return chart;
  var max = Math.max.apply(null, values.concat([1]));
  var pts = values.map(function (v, i) { return (i / (values.length - 1) * W).toFixed(1) + "," + (H - 2 - v / max * (H - 4)).toFixed(1); });
  chart.appendChild(svg("polyline", { points: pts.join(" "), fill: "none", stroke: "#e8590c", "stroke-width": 1.5 }));
  return chart;
}

function niceMax(v) {
  if (v <= 0) return 1;
  var p = Math.pow(10, Math.floor(Math.log10(v))), m = v / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}
function fmtShort(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (v >= 1e3) return (v / 1e3).toFixed(1) + "k";
  return Math.round(v * 100) / 100 + "";
}

function fmtSpan(ms) {
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
  return (ms / 60000).toFixed(1) + " min";
}

// ------------------------------------------------------------------------------------------ pages

var pages = {};

/* Live: the console's in-memory samples, re-read every 5 s. A kept day (rocketmq-dashboard's per-day view):
   that day's lines from the console's data directory, one point per history step. */
pages.dashboard = function () {
  var main = page("Dashboard");
  var pick = h("select", { id: "dashboard-day", "aria-label": "Day" }, h("option", { value: "", text: "Live" }));
  main.appendChild(h("p", null, h("label", { "class": "inline" }, "Show", pick), " ",
    h("span", { "class": "muted", id: "sampling", text: "" })));
  var grid = h("div", { "class": "grid2" });
  main.appendChild(grid);
  var put = section(grid, "Broker put TPS"), got = section(grid, "Broker get TPS"), topics = section(grid, "Topic TPS (busiest 10)");
  var latest = section(grid, "Now");
  function listDays(days) {
    var shown = Array.prototype.map.call(pick.options, function (o) { return o.value; }).slice(1);
    if (shown.join() === (days || []).join()) return;
    var keep = pick.value;
    while (pick.options.length > 1) pick.remove(1);
    (days || []).forEach(function (day) { pick.appendChild(h("option", { value: day, text: day })); });
    pick.value = keep;
  }
  function draw(d, day) {
    var puts = {}, gets = {}, rows = [];
    Object.keys(d.brokers).forEach(function (b) {
      var s = d.brokers[b];
      puts[b] = s.map(function (p) { return [p[0], p[1]]; });
      gets[b] = s.map(function (p) { return [p[0], p[2]]; });
      var last = s[s.length - 1] || [0, 0, 0];
      rows.push({ name: b, put: last[1], get: last[2] });
    });
    fill(put, lineChart(puts, "msg/s"));
    fill(got, lineChart(gets, "msg/s"));
    fill(topics, lineChart(d.topics, "msg/s"));
    fill(latest, table([{ label: "Broker", key: "name" }, { label: day ? "Last put TPS" : "Put TPS", key: "put", num: true, digits: 2 },
      { label: day ? "Last get TPS" : "Get TPS", key: "get", num: true, digits: 2 }], rows, day ? "nothing kept for this day" : "no broker sampled yet"));
    document.getElementById("sampling").textContent = day
      ? "Kept by the console: one point every " + d.step + " s of " + day + "."
      : "Sampled by the console every " + d.interval + " s (" + d.rounds + " rounds so far)" + (d.error ? "; last round failed: " + d.error : "") + ".";
  }
  var drawn = null, today = null;
  function load() {
    var day = pick.value;
    if (day && day === drawn && day !== today) return;  // an earlier day does not change: read it once
    (day ? get("dashboard/day", { date: day }) : get("dashboard")).then(function (d) {
      if (pick.value !== day) return;  // another day was picked meanwhile
      listDays(d.days);
      today = (d.days || [])[0];
      drawn = day;
      draw(d, day);
    }).catch(fail(put, true));
  }
  pick.addEventListener("change", load);
  every(5, load);
};

pages.cluster = function () {
  var main = page("Cluster");
  var list = section(main, "Brokers"), detail = h("div");
  main.appendChild(detail);
  get("cluster").then(function (d) {
    fill(list, table([
      { label: "Cluster", key: "clusterName" }, { label: "Broker", key: "brokerName" }, { label: "ID", key: "brokerId", num: true },
      { label: "Address", key: "addr", mono: true }, { label: "Version", key: "version" },
      { label: "Role", value: function (r) { return h("span", { "class": "pill " + (r.brokerId === 0 ? "master" : "slave"), text: r.role || "-" }); } },
      { label: "In TPS", key: "inTps", num: true, digits: 2 }, { label: "Out TPS", key: "outTps", num: true, digits: 2 },
      { label: "In today", key: "inTotalToday", num: true }, { label: "Out today", key: "outTotalToday", num: true },
      { label: "In yesterday", key: "inTotalYest", num: true }, { label: "Disk used", value: function (r) { return r.space === null || r.space === undefined ? "-" : (r.space * 100).toFixed(1) + " %"; }, num: true },
      { label: "", value: function (r) {
        return h("span", null, h("button", { "class": "secondary", text: "Status", onclick: function () { brokerDetail(detail, r.addr, "runtime"); } }), " ",
          h("button", { "class": "secondary", text: "Config", onclick: function () { brokerDetail(detail, r.addr, "config"); } }));
      } }
    ], d.brokers, "the NameServer knows no broker"));
  }).catch(fail(list));
};

function brokerDetail(target, addr, which) {
  target.textContent = "";
  var box = section(target, (which === "runtime" ? "Runtime status of " : "Config of ") + addr);
  get("broker", { addr: addr }).then(function (d) {
    if (which === "runtime") { fill(box, kvTable(d.runtime)); return; }
    var key = h("select", { id: "config-key" }, Object.keys(d.config).map(function (k) { return h("option", { value: k, text: k }); }));
    var value = h("input", { id: "config-value", size: 30 });
    key.addEventListener("change", function () { value.value = d.config[key.value]; });
    value.value = d.config[key.value] || "";
    var save = h("button", { id: "config-save", text: "Change", onclick: function () {
      post("broker/config", { addr: addr, key: key.value, value: value.value }).then(function (r) {
        flash(r.key + " of " + r.addr + " is now " + r.value); brokerDetail(target, addr, which);
      }).catch(fail());
    } });
    fill(box, [h("div", { "class": "row" }, field("Setting", key), field("Value", value), save),
      h("p", { "class": "muted", text: "Only settings the broker allows to change while running are taken; it says why otherwise." }),
      kvTable(d.config)]);
  }).catch(fail(box));
}

pages.topics = function () {
  var main = page("Topics");
  var filter = h("input", { id: "topic-filter", placeholder: "filter by name", size: 28 });
  var kind = h("select", { id: "topic-kind" }, ["all", "normal", "retry", "dlq", "system"].map(function (k) {
    return h("option", { value: k, text: k, selected: k === "normal" });
  }));
  var createBox = h("div", { "class": "card" }, h("h2", { text: "Create or update a topic" }));
  var name = h("input", { id: "new-topic", placeholder: "TopicName", size: 26, required: true, pattern: "[%|a-zA-Z0-9_-]{1,127}" });
  var cluster = h("select", { id: "new-topic-cluster" });
  var reads = h("input", { id: "new-topic-reads", type: "number", min: 1, max: 1024, value: 8 });
  var writes = h("input", { id: "new-topic-writes", type: "number", min: 1, max: 1024, value: 8 });
  var perm = h("select", { id: "new-topic-perm" }, [["6", "RW"], ["4", "R"], ["2", "W"]].map(function (p) { return h("option", { value: p[0], text: p[1] }); }));
  var order = h("input", { id: "new-topic-order", type: "checkbox" });
  var topicBrokers = h("input", { id: "new-topic-brokers", placeholder: "all of the cluster", size: 22 });
  var create = h("button", { id: "create-topic", text: "Create", onclick: function () {
    create.disabled = true;
    post("topic/create", { topic: name.value.trim(), cluster: cluster.value, readQueueNums: reads.value,
      writeQueueNums: writes.value, perm: perm.value, order: order.checked, brokers: brokerNames(topicBrokers) })
      .then(function (r) { flash("Topic " + r.topicConfig.topicName + " created on " + r.brokers.join(", ")); name.value = ""; load(); })
      .catch(fail()).then(function () { create.disabled = false; });
  } });
  append(createBox, h("div", { "class": "row" }, field("Name", name), field("Cluster", cluster), field("Brokers (names, comma-separated)", topicBrokers),
    field("Read queues", reads), field("Write queues", writes), field("Perm", perm), field("Order", order), create));
  main.appendChild(h("div", { "class": "row" }, field("Filter", filter), field("Kind", kind)));
  var list = h("div", { id: "topic-list" });
  main.appendChild(h("div", { "class": "card" }, list));
  main.appendChild(createBox);
  var pending;
  function load() {
    get("topics", { kind: kind.value, filter: filter.value.trim() }).then(function (d) {
      if (cluster.options.length !== d.clusters.length) {
        cluster.textContent = "";
        d.clusters.forEach(function (c) { cluster.appendChild(h("option", { value: c, text: c })); });
      }
      fill(list, [table([
        { label: "Topic", key: "topic", link: function (r) { return "#/topic/" + encodeURIComponent(r.topic); } },
        { label: "Kind", value: function (r) { return h("span", { "class": "pill", text: r.kind }); } }
      ], d.topics, "no topic matches"), h("p", { "class": "muted", text: d.topics.length + " topic(s)" + (d.truncated ? " (list cut)" : "") })]);
    }).catch(fail(list));
  }
  filter.addEventListener("input", function () { clearTimeout(pending); pending = setTimeout(load, 250); });
  kind.addEventListener("change", load);
  load();
};

pages.topic = function (topic) {
  var main = page("Topic " + topic);
  var clusters = [];
  var status = section(main, "Status (per queue)"), route = section(main, "Route"), config = section(main, "Config (per broker)");
  var consumers = section(main, "Consumers");
  function loadConfig() {
    get("topic/config", { topic: topic }).then(function (rows) {
      fill(config, table([{ label: "Broker", key: "brokerName" }, { label: "Address", key: "addr", mono: true },
        { label: "Read queues", key: "readQueueNums", num: true }, { label: "Write queues", key: "writeQueueNums", num: true },
        { label: "Perm", key: "perm", num: true }, { label: "Order", value: function (r) { return r.order ? "yes" : "no"; } },
        { label: "Filter", key: "topicFilterType" }, { label: "Sys flag", key: "topicSysFlag", num: true },
        { label: "", value: function (r) {
          return h("button", { "class": "danger", text: "Delete on this broker", onclick: function () {
            if (!window.confirm("Delete topic " + topic + " on broker " + r.brokerName + " only?")) return;
            post("topic/delete-in-broker", { topic: topic, broker: r.brokerName }).then(function () {
              flash("Topic " + topic + " deleted on " + r.brokerName); loadConfig();
            }).catch(fail(config));
          } });
        } }], rows, "no master broker holds this topic"));
    }).catch(fail(config));
  }
  loadConfig();
  get("topic/status", { topic: topic }).then(function (rows) {
    fill(status, table([{ label: "Broker", key: "brokerName" }, { label: "Queue", key: "queueId", num: true },
      { label: "Min offset", key: "minOffset", num: true }, { label: "Max offset", key: "maxOffset", num: true },
      { label: "Last updated", value: function (r) { return fmtTime(r.lastUpdateTimestamp); } }], rows));
  }).catch(fail(status));
  get("topic/route", { topic: topic }).then(function (r) {
    clusters = (r.brokerDatas || []).map(function (b) { return b.cluster; });
    var rows = [];
    (r.brokerDatas || []).forEach(function (b) {
      var q = (r.queueDatas || []).filter(function (q) { return q.brokerName === b.brokerName; })[0] || {};
      Object.keys(b.brokerAddrs || {}).forEach(function (id) {
        rows.push({ cluster: b.cluster, broker: b.brokerName, id: id, addr: b.brokerAddrs[id], reads: q.readQueueNums, writes: q.writeQueueNums, perm: q.perm });
      });
    });
    fill(route, table([{ label: "Cluster", key: "cluster" }, { label: "Broker", key: "broker" }, { label: "ID", key: "id", num: true },
      { label: "Address", key: "addr", mono: true }, { label: "Read queues", key: "reads", num: true },
      { label: "Write queues", key: "writes", num: true }, { label: "Perm", key: "perm", num: true }], rows));
  }).catch(fail(route));
  get("topic/consumers", { topic: topic }).then(function (groups) {
    fill(consumers, table([{ label: "Group", key: "group", link: function (r) { return "#/consumer/" + encodeURIComponent(r.group); } },
      { label: "Queues", value: function (r) { return r.queues.length; }, num: true }, { label: "Lag (diff total)", key: "diffTotal", num: true }],
      groups, "no group consumes this topic"));
  }).catch(fail(consumers));

  var send = h("div", { "class": "card" }, h("h2", { text: "Send a test message" }));
  var tags = h("input", { id: "send-tags", placeholder: "TagA", size: 14 }), keys = h("input", { id: "send-keys", placeholder: "key1 key2", size: 20 });
  var body = h("textarea", { id: "send-body", placeholder: "message body" });
  var result = h("div", { id: "send-result" });
  var transactional = h("input", { id: "send-transactional", type: "checkbox" });
  var sendButton = h("button", { id: "send-message", text: "Send", onclick: function () {
    post("topic/send", { topic: topic, tags: tags.value, keys: keys.value, body: body.value, transactional: transactional.checked }).then(function (r) {
      fill(result, kvTable(r));
      flash("Sent: " + r.sendStatus + " " + r.msgId);
    }).catch(fail(result));
  } });
  append(send, [h("div", { "class": "row" }, field("Tags", tags), field("Keys", keys), field("As a transaction that commits", transactional)),
    field("Body", body), h("p", null, sendButton), result]);
  main.appendChild(send);

  var reset = h("div", { "class": "card" }, h("h2", { text: "Reset a group's offset" }));
  var group = h("input", { id: "reset-group", placeholder: "ConsumerGroup", size: 24 }), when = h("input", { id: "reset-time", type: "datetime-local", step: 1 });
  var resetResult = h("div");
  function doReset(stamp) {
    if (!group.value.trim()) { flash("give the consumer group", "error"); return; }
    post("consumer/reset-offset", { group: group.value.trim(), topic: topic, timestamp: stamp }).then(function (r) {
      fill(resetResult, table([{ label: "Broker", key: "brokerName" }, { label: "Queue", key: "queueId", num: true }, { label: "New offset", key: "offset", num: true }], r.offsets));
      flash("Offsets of " + r.group + " reset");
    }).catch(fail(resetResult));
  }
  append(reset, [h("div", { "class": "row" }, field("Group", group), field("To time", when),
    h("button", { text: "Reset to time", onclick: function () { if (!when.value) { flash("give a time", "error"); return; } doReset(when.value); } }),
    h("button", { "class": "secondary", text: "Skip backlog (to now)", onclick: function () { doReset(""); } })), resetResult]);
  main.appendChild(reset);

  var danger = h("div", { "class": "card" }, h("h2", { text: "Delete" }));
  append(danger, h("button", { "class": "danger", id: "delete-topic", text: "Delete topic " + topic, onclick: function () {
    if (!window.confirm("Delete topic " + topic + " from every broker of its cluster and from the NameServer?")) return;
    post("topic/delete", { topic: topic, cluster: clusters[0] }).then(function () {
      flash("Topic " + topic + " deleted"); location.hash = "#/topics";
    }).catch(fail());
  } }));
  main.appendChild(danger);
};

pages.consumers = function () {
  var main = page("Consumers");
  var filter = h("input", { id: "group-filter", placeholder: "filter by group", size: 28 });
  main.appendChild(h("div", { "class": "row" }, field("Filter", filter)));
  var list = section(main, "Groups");
  function load() {
    get("consumers", { filter: filter.value.trim() }).then(function (rows) {
      fill(list, table([{ label: "Group", key: "group", link: function (r) { return "#/consumer/" + encodeURIComponent(r.group); } },
        { label: "Online clients", key: "count", num: true }, { label: "Version", key: "version" }, { label: "Type", key: "consumeType" },
        { label: "Model", key: "messageModel" }, { label: "TPS", key: "consumeTps", num: true, digits: 2 },
        { label: "Lag (diff total)", key: "diffTotal", num: true },
        { label: "Monitor", value: function (r) {
          return r.alarm && r.alarm.length ? h("span", { "class": "pill alarm", text: r.alarm.join("; ") }) : "";
        } }], rows, "no consumer group"));
    }).catch(fail(list));
    get("monitor").then(function (table_) {
      fill(monitors, table([{ label: "Group", key: "group" }, { label: "Min online", key: "minCount", num: true },
        { label: "Max lag", key: "maxDiffTotal", num: true }, { label: "", value: function (r) {
          return h("button", { "class": "secondary", text: "Stop monitoring", onclick: function () {
            post("monitor/delete", { group: r.group }).then(load).catch(fail());
          } });
        } }], Object.keys(table_).map(function (g) { return { group: g, minCount: table_[g].minCount, maxDiffTotal: table_[g].maxDiffTotal }; }),
        "no group monitored"));
    }).catch(fail(monitors, true));
  }
  var pending;
  filter.addEventListener("input", function () { clearTimeout(pending); pending = setTimeout(load, 250); });
  /* rocketmq-dashboard's consumer monitor: bounds per group, marked live in the list above when passed. */
  var monitorCard = h("div", { "class": "card" }, h("h2", { text: "Monitor a group" }));
  var monGroup = h("input", { id: "monitor-group", placeholder: "ConsumerGroup", size: 26 });
  var monMin = h("input", { id: "monitor-min", type: "number", min: 0, value: 1 }), monMax = h("input", { id: "monitor-max", type: "number", min: 0, value: 10000 });
  var monitors = h("div", { id: "monitor-list" });
  append(monitorCard, [h("div", { "class": "row" }, field("Group", monGroup), field("Least online consumers", monMin), field("Most lag (diff total)", monMax),
    h("button", { id: "monitor-save", text: "Monitor", onclick: function () {
      post("monitor/set", { group: monGroup.value.trim(), minCount: monMin.value, maxDiffTotal: monMax.value }).then(function (r) {
        flash("Monitoring " + r.group); load();
      }).catch(fail());
    } })), monitors]);
  main.appendChild(monitorCard);
  every(10, load);

  var create = h("div", { "class": "card" }, h("h2", { text: "Create or update a consumer group" }));
  var name = h("input", { id: "new-group", placeholder: "ConsumerGroup", size: 26 }), cluster = h("select", { id: "new-group-cluster" });
  var retryQueues = h("input", { id: "new-group-retry-queues", type: "number", min: 0, max: 64, value: 1 });
  var retries = h("input", { id: "new-group-retries", type: "number", min: 0, max: 64, value: 16 });
  var broadcast = h("input", { id: "new-group-broadcast", type: "checkbox" }), enabled = h("input", { id: "new-group-enabled", type: "checkbox", checked: true });
  var groupBrokers = h("input", { id: "new-group-brokers", placeholder: "all of the cluster", size: 22 });
  var button = h("button", { id: "create-group", text: "Save", onclick: function () {
    post("consumer/create", { group: name.value.trim(), cluster: cluster.value, retryQueueNums: retryQueues.value, retryMaxTimes: retries.value,
      consumeBroadcastEnable: broadcast.checked, consumeEnable: enabled.checked, brokers: brokerNames(groupBrokers) })
      .then(function (r) { flash("Group " + r.subscriptionGroupConfig.groupName + " saved on " + r.brokers.join(", ")); }).catch(fail());
  } });
  append(create, h("div", { "class": "row" }, field("Group", name), field("Cluster", cluster),
    field("Brokers (names, comma-separated)", groupBrokers), field("Retry queues", retryQueues),
    field("Max retries", retries), field("Broadcast", broadcast), field("Consume enabled", enabled), button));
  main.appendChild(create);
  clusterOptions(cluster);
};

/* A "Brokers" field: the broker names typed, or undefined (left out of the request: the whole cluster). */
function brokerNames(input) {
  var names = input.value.split(",").map(function (n) { return n.trim(); }).filter(function (n) { return n; });
  return names.length ? names : undefined;
}

function clusterOptions(select) {
  return get("cluster").then(function (d) {
    select.textContent = "";
    d.clusters.forEach(function (c) { select.appendChild(h("option", { value: c, text: c })); });
  }).catch(fail());
}

pages.consumer = function (group) {
  var main = page("Consumer group " + group);
  var live = h("p", { "class": "muted", id: "lag-live" });
  main.appendChild(live);
  var progress = section(main, "Progress and lag per queue (live)"), conns = section(main, "Connections");
  var config = section(main, "Subscription config (per broker)");
  config.id = "group-config";
  get("consumer/config", { group: group }).then(function (rows) {
    fill(config, table([{ label: "Cluster", key: "cluster" }, { label: "Broker", key: "brokerName" },
      { label: "Consume enabled", value: function (r) { return String(r.consumeEnable); } },
      { label: "Broadcast", value: function (r) { return String(r.consumeBroadcastEnable); } },
      { label: "From min", value: function (r) { return String(r.consumeFromMinEnable); } },
      { label: "Retry queues", key: "retryQueueNums", num: true }, { label: "Max retries", key: "retryMaxTimes", num: true },
      { label: "Broker id", key: "brokerId", num: true }, { label: "When slow", key: "whichBrokerWhenConsumeSlowly", num: true },
      { label: "Notify ids changed", value: function (r) { return String(r.notifyConsumerIdsChangedEnable); } }],
      rows, "no master holds a subscription config for this group"));
  }).catch(fail(config));
  var history = [];
  every(3, function () {
    get("consumer/progress", { group: group }).then(function (d) {
      history.push(d.diffTotal);
      if (history.length > 60) history.shift();
      fill(live, ["Lag ", h("strong", { id: "lag-total", text: String(d.diffTotal) }), " message(s), consume TPS " + d.consumeTps.toFixed(2) +
        ", updated " + fmtTime(d.at) + " ", sparkline(history)]);
      fill(progress, table([{ label: "Topic", key: "topic", link: function (r) { return "#/topic/" + encodeURIComponent(r.topic); } },
        { label: "Broker", key: "brokerName" }, { label: "Queue", key: "queueId", num: true },
        { label: "Broker offset", key: "brokerOffset", num: true }, { label: "Consumer offset", key: "consumerOffset", num: true },
        { label: "Lag", value: function (r) { return h("span", { "class": r.diff > 1000 ? "lag-high" : null, text: String(r.diff) }); }, num: true },
        { label: "Last consumed", value: function (r) { return fmtTime(r.lastTimestamp); } }], d.queues));
    }).catch(fail(progress, true));
  });
  every(10, function () { get("consumer/connection", { group: group }).then(function (c) {
    var subs = c.subscriptionTable || {};
    fill(conns, [table([{ label: "Client id", key: "clientId", mono: true }, { label: "Address", key: "clientAddr", mono: true },
      { label: "Language", key: "language" }, { label: "Version", key: "version" },
      { label: "", value: function (r) { return h("button", { "class": "secondary", text: "Running info", onclick: function () { runningInfo(info, group, r.clientId); } }); } }],
      c.connectionSet || [], "no client online"),
      h("p", { "class": "muted", text: c.offline ? "" : "Type " + (c.consumeType || "-") + ", model " + (c.messageModel || "-") + ", from " + (c.consumeFromWhere || "-") }),
      table([{ label: "Subscribed topic", key: "topic" }, { label: "Expression", key: "sub" }],
        Object.keys(subs).map(function (t) { return { topic: t, sub: (subs[t] || {}).subString }; }), "no subscription known")]);
  }).catch(fail(conns, true)); });
  var info = h("div", { id: "running-info" });
  main.appendChild(info);
  var manage = h("div", { "class": "card" }, h("h2", { text: "Manage" }));
  append(manage, h("p", null, h("a", { href: "#/dlq/" + encodeURIComponent(group), text: "Dead-letter messages of " + group })));
  append(manage, h("button", { "class": "danger", id: "delete-group", text: "Delete group " + group, onclick: function () {
    if (!window.confirm("Delete consumer group " + group + " (its subscription config, retry and DLQ topics) from its cluster?")) return;
    get("cluster").then(function (d) {
      return post("consumer/delete", { group: group, cluster: d.clusters.length === 1 ? d.clusters[0] : undefined });
    }).then(function () { flash("Group " + group + " deleted"); location.hash = "#/consumers"; }).catch(fail());
  } }));
  main.appendChild(manage);
};

function runningInfo(target, group, clientId, jstack) {
  var box = section(target, "Running info of " + clientId + (jstack ? " (with its thread stacks)" : ""));
  get("consumer/running-info", { group: group, clientId: clientId, jstack: jstack ? "true" : "false" }).then(function (d) {
    var stacks = d.jstack;
    delete d.jstack;
    fill(box, [h("button", { "class": "secondary", id: "running-jstack", text: "With thread stacks (jstack)", onclick: function () {
      target.textContent = ""; runningInfo(target, group, clientId, true);
    } }), h("pre", { text: JSON.stringify(d, null, 2) }), stacks ? h("pre", { id: "running-stacks", text: stacks }) : null]);
  }).catch(fail(box));
}

pages.dlq = function (group) {
  var main = page("Dead-letter queue");
  main.appendChild(h("p", { "class": "muted", text: "Messages that used up their retries are kept in the topic %DLQ%<group>. " +
    "Resend sends them back to the group through its retry topic, as messages of the topic they first came from. " +
    "Export saves them with whole bodies and every property (CSV for a spreadsheet, or JSON)." }));
  var name = h("input", { id: "dlq-group", placeholder: "ConsumerGroup", size: 26, value: group || "" });
  var begin = h("input", { id: "dlq-begin", type: "datetime-local", step: 1 }), end = h("input", { id: "dlq-end", type: "datetime-local", step: 1 });
  var out = h("div", { id: "dlq-results" });
  var selected = {};
  function chosen() { return Object.keys(selected).filter(function (k) { return selected[k]; }); }
  function resend(ids) {
    var g = name.value.trim();
    if (!ids.length) { flash("select messages first", "error"); return; }
    post("dlq/batch-resend", { group: g, offsetMsgIds: ids }).then(function (x) {
      var failed = x.results.filter(function (r) { return r.error; });
      flash(x.sent + " of " + x.results.length + " sent back to " + g + (failed.length ? "; " + failed[0].offsetMsgId + ": " + failed[0].error : ""),
        failed.length ? "error" : "ok");
    }).catch(fail());
  }
  function exportAs(kind, onlySelected) {
    var g = name.value.trim(), ids = chosen();
    if (onlySelected && !ids.length) { flash("select messages first", "error"); return; }
    get("dlq/export", { group: g, begin: begin.value, end: end.value }).then(function (d) {
      var rows = d.messages.filter(function (m) { return !onlySelected || selected[m.offsetMsgId]; });
      var text = kind === "csv" ? toCsv(rows) : JSON.stringify({ group: d.group, exportedAt: d.exportedAt, messages: rows }, null, 2);
      download("dlq-" + g + "-" + d.exportedAt + "." + kind, text, kind === "csv" ? "text/csv" : "application/json");
      flash(rows.length + " message(s) exported");
    }).catch(fail());
  }
  function run() {
    if (!name.value.trim()) return;
    selected = {};
    fill(out, h("p", { "class": "muted", text: "Searching…" }));
    get("messages/by-topic", { topic: "%DLQ%" + name.value.trim(), begin: begin.value, end: end.value }).then(function (rows) {
      var all = h("input", { type: "checkbox", id: "dlq-select-all", title: "select all", onchange: function () {
        rows.forEach(function (r) { selected[r.offsetMsgId] = all.checked; });
        out.querySelectorAll("input.dlq-pick").forEach(function (c) { c.checked = all.checked; });
      } });
      var columns = [{ label: "", value: function (r) {
        return h("input", { type: "checkbox", "class": "dlq-pick", onchange: function (e) { selected[r.offsetMsgId] = e.target.checked; } });
      } }].concat(messageColumns).concat([{ label: "", value: function (r) {
        return h("button", { "class": "secondary", text: "Resend", onclick: function () {
          post("dlq/resend", { group: name.value.trim(), offsetMsgId: r.offsetMsgId }).then(function (x) {
            flash("Sent back to " + name.value.trim() + " through " + x.topic + " as a message of " + x.originTopic + ": " + x.sendStatus);
          }).catch(fail());
        } });
      } }]);
      var actions = h("div", { "class": "row" }, field("All", all),
        h("button", { id: "dlq-resend-selected", text: "Resend selected", onclick: function () { resend(chosen()); } }),
        h("button", { "class": "secondary", id: "dlq-export-selected", text: "Export selected (CSV)", onclick: function () { exportAs("csv", true); } }),
        h("button", { "class": "secondary", id: "dlq-export-csv", text: "Export all (CSV)", onclick: function () { exportAs("csv", false); } }),
        h("button", { "class": "secondary", id: "dlq-export-json", text: "Export all (JSON)", onclick: function () { exportAs("json", false); } }));
      fill(out, [h("p", { "class": "muted", text: rows.length + " dead-letter message(s)" }), actions, table(columns, rows, "no dead-letter message")]);
    }).catch(fail(out));
  }
  main.appendChild(h("div", { "class": "card" }, h("div", { "class": "row" }, field("Consumer group", name), field("From", begin), field("To", end),
    h("button", { id: "search-dlq", text: "Search", onclick: run }))));
  main.appendChild(out);
  if (group) run();
};

var CSV_COLUMNS = ["msgId", "offsetMsgId", "topic", "tags", "keys", "queueId", "queueOffset", "reconsumeTimes", "bornTimestamp",
  "bornHost", "storeTimestamp", "storeHost", "properties", "body"];

/* RFC 4180: every field quoted, quotes doubled; a leading = + - @ is prefixed with ' so a spreadsheet does not run it. */
function toCsv(rows) {
  function cell(v) {
    var text = v === null || v === undefined ? "" : (typeof v === "object" ? JSON.stringify(v) : String(v));
    if (/^[=+\-@\t\r]/.test(text)) text = "'" + text;
    return '"' + text.replace(/"/g, '""') + '"';
  }
  return [CSV_COLUMNS.map(cell).join(",")].concat(rows.map(function (r) {
    return CSV_COLUMNS.map(function (c) { return cell(r[c]); }).join(",");
  })).join("\r\n") + "\r\n";
}

function download(filename, text, type) {
  var url = URL.createObjectURL(new Blob([text], { type: type + ";charset=utf-8" }));
  var a = h("a", { href: url, download: filename, style: null });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
}

pages.acl = function () {
  var main = page("ACL");
  var cluster = h("select", { id: "acl-cluster" });
  var out = h("div", { id: "acl-results" });
  function load() {
    fill(out, h("p", { "class": "muted", text: "Loading…" }));
    get("acl", { cluster: cluster.value }).then(function (d) {
      var parts = [];
      Object.keys(d.brokers).forEach(function (addr) {
        var b = d.brokers[addr];
        parts.push(h("h2", { text: "Broker " + addr }), h("p", { "class": "muted", text: "Global white list: " + ((b.globalWhiteAddrs || []).join(", ") || "none") }),
          table([{ label: "Access key", key: "accessKey", mono: true }, { label: "Admin", key: "admin" }, { label: "White address", key: "whiteRemoteAddress" },
            { label: "Default topic perm", key: "defaultTopicPerm" }, { label: "Default group perm", key: "defaultGroupPerm" },
            { label: "Topic perms", value: function (a) { return (a.topicPerms || []).join(", "); } },
            { label: "Group perms", value: function (a) { return (a.groupPerms || []).join(", "); } },
            { label: "", value: function (a) { return h("button", { "class": "danger", text: "Delete", onclick: function () { deleteAccount(a.accessKey); } }); } }],
            b.plainAccessConfigs || [], "no account"));
      });
      parts.push(h("h2", { text: "ACL file versions" }), table([{ label: "Broker", key: "brokerName" }, { label: "Address", key: "brokerAddr", mono: true },
        { label: "File", key: "aclFilePath", mono: true }, { label: "Version", key: "counter", num: true },
        { label: "Updated", value: function (v) { return fmtTime(v.timestamp); } }], d.versions));
      fill(out, h("div", { "class": "card" }, parts));
    }).catch(fail(out));
  }
  function deleteAccount(key) {
    if (!window.confirm("Delete account " + key + " from every broker of " + cluster.value + "?")) return;
    post("acl/account/delete", { cluster: cluster.value, accessKey: key }).then(function () { flash("Account " + key + " deleted"); load(); }).catch(fail());
  }
  cluster.addEventListener("change", load);
  main.appendChild(h("div", { "class": "row" }, field("Cluster", cluster)));
  main.appendChild(out);

  var edit = h("div", { "class": "card" }, h("h2", { text: "Create or update an account" }));
  var ak = h("input", { id: "acl-access-key", size: 18 }), sk = h("input", { id: "acl-secret-key", type: "password", size: 18, autocomplete: "new-password" });
  var white = h("input", { id: "acl-white", placeholder: "10.1.*", size: 14 }), isAdmin = h("input", { id: "acl-admin", type: "checkbox" });
  var perms = ["", "DENY", "PUB", "SUB", "PUB|SUB"];
  var topicDefault = h("select", { id: "acl-topic-default" }, perms.map(function (p) { return h("option", { value: p, text: p || "(keep)" }); }));
  var groupDefault = h("select", { id: "acl-group-default" }, perms.map(function (p) { return h("option", { value: p, text: p || "(keep)" }); }));
  var topicPerms = h("input", { id: "acl-topic-perms", placeholder: "TopicA=PUB,TopicB=DENY", size: 24 });
  var groupPerms = h("input", { id: "acl-group-perms", placeholder: "GroupA=SUB", size: 20 });
  append(edit, h("div", { "class": "row" }, field("Access key", ak), field("Secret key", sk), field("White address", white), field("Admin", isAdmin),
    field("Default topic perm", topicDefault), field("Default group perm", groupDefault), field("Topic perms", topicPerms), field("Group perms", groupPerms),
    h("button", { id: "acl-save", text: "Save", onclick: function () {
      post("acl/account", { cluster: cluster.value, accessKey: ak.value.trim(), secretKey: sk.value, whiteRemoteAddress: white.value.trim(),
        admin: isAdmin.checked, defaultTopicPerm: topicDefault.value, defaultGroupPerm: groupDefault.value,
        topicPerms: topicPerms.value.trim(), groupPerms: groupPerms.value.trim() })
        .then(function () { flash("Account " + ak.value.trim() + " saved"); sk.value = ""; load(); }).catch(fail());
    } })));
  main.appendChild(edit);
  var whiteBox = h("div", { "class": "card" }, h("h2", { text: "Global white list" }));
  var addresses = h("input", { id: "acl-global-white", placeholder: "10.10.103.*,192.168.0.*", size: 40 });
  append(whiteBox, h("div", { "class": "row" }, field("Addresses (replace the list)", addresses), h("button", { text: "Save", onclick: function () {
    post("acl/white-list", { cluster: cluster.value, addresses: addresses.value.trim() }).then(function () { flash("White list saved"); load(); }).catch(fail());
  } })));
  main.appendChild(whiteBox);
  clusterOptions(cluster).then(load);
};

pages.producers = function () {
  var main = page("Producers");
  var group = h("input", { id: "producer-group", placeholder: "ProducerGroup", size: 24 }), topic = h("input", { id: "producer-topic", placeholder: "Topic", size: 24 });
  var out = h("div");
  main.appendChild(h("div", { "class": "card" }, h("div", { "class": "row" }, field("Producer group", group), field("Topic", topic),
    h("button", { text: "Show connections", onclick: function () {
      get("producers", { group: group.value.trim(), topic: topic.value.trim() }).then(function (c) {
        fill(out, table([{ label: "Client id", key: "clientId", mono: true }, { label: "Address", key: "clientAddr", mono: true },
          { label: "Language", key: "language" }, { label: "Version", key: "version" }], c.connectionSet || [], "no producer online"));
      }).catch(fail(out));
    } })), out));
};

var messageColumns = [
  { label: "Message id", key: "msgId", mono: true, link: function (r) { return "#/message/" + encodeURIComponent(r.offsetMsgId) + "/" + encodeURIComponent(r.topic); } },
  { label: "Tags", key: "tags" }, { label: "Keys", key: "keys" }, { label: "Broker", key: "brokerName" }, { label: "Queue", key: "queueId", num: true },
  { label: "Offset", key: "queueOffset", num: true }, { label: "Stored", value: function (r) { return fmtTime(r.storeTimestamp); } },
  { label: "Body", key: "body" }
];

pages.messages = function () {
  var main = page("Messages");
  var out = h("div", { id: "message-results" });
  function run(path, params) {
    fill(out, h("p", { "class": "muted", text: "Searching…" }));
    get(path, params).then(function (r) {
      var rows = Array.isArray(r) ? r : [r];
      fill(out, [h("p", { "class": "muted", text: rows.length + " message(s)" }), table(messageColumns, rows, "no message found")]);
    }).catch(fail(out));
  }
  var t1 = h("input", { id: "msg-topic", placeholder: "Topic", size: 22 }), begin = h("input", { id: "msg-begin", type: "datetime-local", step: 1 }),
    end = h("input", { id: "msg-end", type: "datetime-local", step: 1 });
  main.appendChild(h("div", { "class": "card" }, h("h2", { text: "By topic and time" }), h("div", { "class": "row" }, field("Topic", t1), field("From", begin), field("To", end),
    h("button", { id: "search-by-topic", text: "Search", onclick: function () { run("messages/by-topic", { topic: t1.value.trim(), begin: begin.value, end: end.value }); } }),
    h("button", { "class": "secondary", id: "page-by-topic", text: "Page through", onclick: function () { runPage(0); } }))));
  /* rocketmq-dashboard 2.x's paged query: the range's messages in (broker, queue, offset) order, a page at a time. */
  function runPage(n) {
    fill(out, h("p", { "class": "muted", text: "Searching…" }));
    get("messages/page", { topic: t1.value.trim(), begin: begin.value || "0", end: end.value, page: n, size: 20 }).then(function (r) {
      var nav = h("div", { "class": "row" },
        h("button", { "class": "secondary", id: "page-prev", text: "Previous", disabled: r.page === 0, onclick: function () { runPage(r.page - 1); } }),
        h("span", { id: "page-at", text: "page " + (r.page + 1) + " of " + Math.max(r.pages, 1) + " (" + r.total + " message(s))" }),
        h("button", { "class": "secondary", id: "page-next", text: "Next", disabled: r.page + 1 >= r.pages, onclick: function () { runPage(r.page + 1); } }));
      fill(out, [nav, table(messageColumns, r.messages, "no message in this range")]);
    }).catch(fail(out));
  }
  var t2 = h("input", { id: "key-topic", placeholder: "Topic", size: 22 }), key = h("input", { id: "msg-key", placeholder: "Key", size: 22 });
  main.appendChild(h("div", { "class": "card" }, h("h2", { text: "By key" }), h("div", { "class": "row" }, field("Topic", t2), field("Key", key),
    h("button", { id: "search-by-key", text: "Search", onclick: function () { run("messages/by-key", { topic: t2.value.trim(), key: key.value.trim() }); } }))));
  var t3 = h("input", { id: "id-topic", placeholder: "Topic (for a client id)", size: 22 }), id = h("input", { id: "msg-id", placeholder: "Message id", size: 40 });
  main.appendChild(h("div", { "class": "card" }, h("h2", { text: "By message id" }), h("div", { "class": "row" }, field("Topic", t3), field("Id", id),
    h("button", { id: "search-by-id", text: "Search", onclick: function () { run("messages/by-id", { id: id.value.trim(), topic: t3.value.trim() }); } }))));
  main.appendChild(out);
};

pages.message = function (id, topic) {
  var main = page("Message " + id);
  var box = section(main, null);
  get("messages/by-id", { id: id, topic: topic }).then(function (m) {
    var props = m.properties || {}, body = m.body;
    delete m.properties; delete m.body;
    fill(box, [h("p", null, h("a", { href: "#/trace/" + encodeURIComponent(m.msgId), text: "Trace of this message" })), kvTable(m),
      h("h2", { text: "Properties" }), kvTable(props), h("h2", { text: "Body" }), h("pre", { id: "message-body", text: body })]);
    var resend = resendToConsumer(m.offsetMsgId);
    main.appendChild(messageTrack(m.offsetMsgId, resend));
    main.appendChild(resend);
  }).catch(fail(box));
};

/* rocketmq-dashboard's message track: per consumer group of the topic, whether it consumed this message. */
function messageTrack(offsetMsgId, resend) {
  var out = h("div", { id: "message-track" }, h("p", { "class": "muted", text: "Loading…" }));
  get("messages/track", { id: offsetMsgId }).then(function (d) {
    fill(out, [table([{ label: "Consumer group", key: "consumerGroup", link: function (r) { return "#/consumer/" + encodeURIComponent(r.consumerGroup); } },
      { label: "Track", value: function (r) { return h("span", { "class": "pill", text: r.trackType }); } },
      { label: "Why", key: "exceptionDesc" },
      { label: "", value: function (r) {
        return h("button", { "class": "secondary", text: "Resend to a consumer", onclick: function () { resend.useGroup(r.consumerGroup); } });
      } }], d.tracks, "no consumer group subscribes to " + d.topic),
      d.truncated ? h("p", { "class": "muted", text: "Only the first groups were checked." }) : null]);
  }).catch(fail(out, true));
  return h("div", { "class": "card" }, h("h2", { text: "Consumer groups" }), out);
}

/* The dashboard's "Resend Message": one online consumer of a group runs its listener on this message
   (CONSUME_MESSAGE_DIRECTLY through the broker that stores it) and says how it went. */
function resendToConsumer(offsetMsgId) {
  var group = h("input", { id: "direct-group", placeholder: "ConsumerGroup", size: 24 });
  var out = h("div", { id: "direct-clients" });
  function load() {
    var g = group.value.trim();
    if (!g) return;
    get("consumer/connection", { group: g }).then(function (c) {
      fill(out, table([{ label: "Client id", key: "clientId", mono: true }, { label: "Address", key: "clientAddr", mono: true },
        { label: "Version", key: "version" }, { label: "", value: function (r) {
          return h("button", { "class": "secondary", text: "Consume it now", onclick: function (e) {
            var button = e.target;
            button.disabled = true;
            post("message/consume-directly", { group: g, clientId: r.clientId, offsetMsgId: offsetMsgId }).then(function (x) {
              flash(r.clientId + ": " + x.consumeResult + " in " + x.spentTimeMills + " ms" + (x.remark ? " (" + x.remark + ")" : ""),
                x.consumeResult === "CR_SUCCESS" ? "ok" : "error");
            }).catch(fail()).then(function () { button.disabled = false; });
          } });
        } }], c.connectionSet || [], "no consumer of " + g + " online"));
    }).catch(fail(out));
  }
  var card = h("div", { "class": "card" }, h("h2", { text: "Resend to a consumer" }),
    h("p", { "class": "muted", text: "One online consumer of the group runs its listener on this message now; its offsets and retries are not touched." }),
    h("div", { "class": "row" }, field("Consumer group", group), h("button", { id: "direct-load", text: "Show consumers", onclick: load })), out);
  card.useGroup = function (g) { group.value = g; load(); card.scrollIntoView(); };
  return card;
}

pages.trace = function (id) {
  var main = page("Message trace");
  var msgId = h("input", { id: "trace-id", placeholder: "Message id (the client's)", size: 40, value: id || "" });
  var topic = h("input", { id: "trace-topic", value: "RMQ_SYS_TRACE_TOPIC", size: 26 });
  var out = h("div", { id: "trace-results" });
  function run() {
    if (!msgId.value.trim()) return;
    fill(out, h("p", { "class": "muted", text: "Searching…" }));
    get("messages/trace", { id: msgId.value.trim(), traceTopic: topic.value.trim() }).then(function (t) {
      var parts = [h("p", { "class": "muted", text: t.traceMessages + " trace message(s) in " + t.traceTopic })];
      var graph = traceTimeline(t);
      if (graph) parts.push(h("h2", { text: "Timeline" }), graph);
      parts.push(h("h2", { text: "Sent" }), table([{ label: "Type", key: "msgType" }, { label: "Time", value: function (r) { return fmtTime(r.timeStamp); } },
        { label: "Producer group", key: "groupName" }, { label: "Client", key: "clientHost", mono: true }, { label: "Topic", key: "topic" },
        { label: "Tags", key: "tags" }, { label: "Keys", key: "keys" }, { label: "Broker", key: "storeHost", mono: true },
        { label: "Cost (ms)", key: "costTime", num: true }, { label: "Type of message", key: "messageType" },
        { label: "Status / state", value: function (r) { return r.msgType === "Pub" ? r.status : r.transactionState; } }], t.sends, "no send traced"));
      var groups = Object.keys(t.consumers);
      if (!groups.length) parts.push(h("p", { "class": "muted", text: "No consumption traced." }));
      groups.forEach(function (g) {
        parts.push(h("h2", { text: "Consumed by " + g }), table([{ label: "Began", value: function (a) { return fmtTime(a.beginTimestamp); } },
          { label: "Client", key: "clientHost", mono: true }, { label: "Retry", key: "retryTimes", num: true }, { label: "Cost (ms)", key: "costTime", num: true },
          { label: "Result", value: function (a) { return !a.finished ? "not finished" : a.status === "success" ? "SUCCESS" : a.contextCode !== "SUCCESS" ? a.contextCode : "FAILED"; } }], t.consumers[g]));
      });
      fill(out, h("div", { "class": "card" }, parts));
    }).catch(fail(out));
  }
  main.appendChild(h("div", { "class": "card" }, h("div", { "class": "row" }, field("Message id", msgId), field("Trace topic", topic),
    h("button", { id: "search-trace", text: "Show trace", onclick: run }))));
  /* rocketmq-dashboard's trace query by topic and key: the messages with that key, each one's trace a click away. */
  var keyTopic = h("input", { id: "trace-key-topic", placeholder: "Topic", size: 22 }), key = h("input", { id: "trace-key", placeholder: "Key", size: 22 });
  var found = h("div", { id: "trace-key-results" });
  main.appendChild(h("div", { "class": "card" }, h("h2", { text: "By topic and key" }), h("div", { "class": "row" }, field("Topic", keyTopic), field("Key", key),
    h("button", { id: "search-trace-key", text: "Find messages", onclick: function () {
      get("messages/by-key", { topic: keyTopic.value.trim(), key: key.value.trim() }).then(function (rows) {
        fill(found, table([{ label: "Message id", key: "msgId", mono: true }, { label: "Keys", key: "keys" },
          { label: "Stored", value: function (r) { return fmtTime(r.storeTimestamp); } },
          { label: "", value: function (r) {
            return h("button", { "class": "secondary", text: "Show trace", onclick: function () { msgId.value = r.msgId; run(); } });
          } }], rows, "no message with this key"));
      }).catch(fail(found));
    } })), found));
  main.appendChild(out);
  if (id) run();
};

/* The trace as a timeline (rocketmq-dashboard's trace graph): one row per send and per consumer group, each
   record a bar from its start for its cost, placed on one time axis from the first record to the last. */
function traceTimeline(t) {
  var rows = [];
  t.sends.forEach(function (s) {
    rows.push({ label: s.msgType + " " + (s.groupName || ""), bars: [{ start: s.timeStamp, cost: s.costTime || 0,
      kind: s.msgType === "Pub" ? (s.status === "success" ? "ok" : "bad") : "tx",
      title: s.msgType + " by " + (s.clientHost || "?") + " at " + fmtTime(s.timeStamp) + ", " + (s.costTime || 0) + " ms" +
        (s.transactionState ? ", " + s.transactionState : "") }] });
  });
  Object.keys(t.consumers).forEach(function (g) {
    rows.push({ label: g, bars: t.consumers[g].filter(function (a) { return a.beginTimestamp; }).map(function (a) {
      var result = !a.finished ? "not finished" : a.status === "success" ? "SUCCESS" : a.contextCode !== "SUCCESS" ? a.contextCode : "FAILED";
      return { start: a.beginTimestamp, cost: a.costTime || 0, kind: !a.finished ? "open" : result === "SUCCESS" ? "ok" : "bad",
        title: g + " on " + (a.clientHost || "?") + ", retry " + (a.retryTimes || 0) + ", at " + fmtTime(a.beginTimestamp) + ", " +
          (a.costTime || 0) + " ms: " + result };
    }) });
  });
  var t0 = Infinity, t1 = -Infinity;
  rows.forEach(function (r) { r.bars.forEach(function (b) { t0 = Math.min(t0, b.start); t1 = Math.max(t1, b.start + b.cost); }); });
  if (!isFinite(t0)) return null;
  if (t1 - t0 < 10) t1 = t0 + 10;
  var W = 1100, L = 200, R = 20, ROW = 26, T = 8, B = 26, H = T + rows.length * ROW + B;
  var colors = { ok: "#2f9e44", bad: "#c92a2a", tx: "#7048e8", open: "#adb5bd" };
  var x = function (v) { return L + (v - t0) / (t1 - t0) * (W - L - R); };
  var chart = svg("svg", { "class": "chart", id: "trace-timeline", viewBox: "0 0 " + W + " " + H, role: "img" });
  [0, 0.5, 1].forEach(function (f, j) {
    var at = t0 + f * (t1 - t0), px = x(at);
    chart.appendChild(svg("line", { x1: px, x2: px, y1: T, y2: H - B, stroke: "#eceff4" }));
    chart.appendChild(svg("text", { x: j === 0 ? px : j === 1 ? px - 24 : px - 60, y: H - 8, text: j === 0 ? fmtTime(t0).slice(11) : "+" + fmtSpan(at - t0) }));
  });
  rows.forEach(function (r, i) {
    var y = T + i * ROW;
    var label = r.label.length > 26 ? r.label.slice(0, 25) + "…" : r.label;
    chart.appendChild(svg("text", { x: 4, y: y + ROW / 2 + 4, text: label }));
    r.bars.forEach(function (b) {
      var rect = svg("rect", { x: x(b.start).toFixed(1), y: y + 5, width: Math.max(3, x(b.start + b.cost) - x(b.start)).toFixed(1),
        height: ROW - 10, rx: 2, fill: colors[b.kind], "class": "trace-bar " + b.kind });
      rect.appendChild(svg("title", { text: b.title }));
      chart.appendChild(rect);
    });
  });
  var legend = h("div", { "class": "legend" });
  [["ok", "sent / consumed"], ["bad", "failed"], ["tx", "transaction end"], ["open", "not finished"]].forEach(function (k) {
    legend.appendChild(h("span", null, h("i", null), k[1]));
    legend.lastChild.firstChild.style.background = colors[k[0]];
  });
  return h("div", null, chart, legend);
}

pages.login = function (next) {
  var main = page("Log in");
  var users = session.loginKind === "users";
  main.appendChild(h("p", { "class": "muted", text: users ? "Give your console user name and password." :
    "This console acts as your ACL account: give its access key and secret key." }));
  var ak = h("input", { id: "login-access-key", size: 24, autocomplete: "username" });
  var sk = h("input", { id: "login-secret-key", type: "password", size: 24, autocomplete: "current-password" });
  var button = h("button", { id: "login", text: "Log in", onclick: function () {
    button.disabled = true;
    var form = users ? { username: ak.value.trim(), password: sk.value } : { accessKey: ak.value.trim(), secretKey: sk.value };
    post("login", form).then(function (r) {
      session.user = r.user;
      session.readOnly = r.readOnly;
      showUser();
      location.hash = "#/" + (next || "dashboard");
    }).catch(fail()).then(function () { button.disabled = false; });
  } });
  main.appendChild(h("div", { "class": "card" }, h("div", { "class": "row" }, field(users ? "User name" : "Access key", ak),
    field(users ? "Password" : "Secret key", sk), button)));
};

/* rocketmq-dashboard's OPS page: which NameServers the console asks, and a switch to others. */
pages.ops = function () {
  var main = page("NameServer");
  var out = section(main, "The console asks");
  var addr = h("input", { id: "ops-namesrv", size: 40, list: "ops-known", placeholder: "host:port;host:port" });
  var known = h("datalist", { id: "ops-known" });
  function show(d) {
    fill(out, [h("p", { "class": "mono", id: "ops-current", text: d.namesrvAddr }),
      table([{ label: "Used in this run", key: "addr", mono: true }, { label: "", value: function (r) {
        return h("button", { "class": "secondary", text: "Use", onclick: function () { addr.value = r.addr; switchTo(); } });
      } }], d.known.map(function (a) { return { addr: a }; }))]);
    fill(known, d.known.map(function (a) { return h("option", { value: a }); }));
  }
  function switchTo() {
    post("ops/namesrv", { namesrvAddr: addr.value.trim() }).then(function (d) {
      session.namesrv = d.namesrvAddr.split(";");
      showUser();
      flash("Now asking " + d.namesrvAddr + " (cluster " + d.clusters.join(", ") + ")");
      show(d);
    }).catch(fail());
  }
  main.appendChild(h("div", { "class": "card" }, h("h2", { text: "Switch" }), h("p", { "class": "muted",
    text: "The new NameServers must answer first; then every page, every logged-in user and the dashboard use them (its history starts anew)." }),
    h("div", { "class": "row" }, field("NameServer addresses", addr), known, h("button", { id: "ops-switch", text: "Switch", onclick: switchTo }))));
  var vip = h("input", { id: "ops-vip", type: "checkbox" });
  vip.addEventListener("change", function () {
    post("ops/vip", { enabled: vip.checked }).then(function (d) {
      flash("VIP channel " + (d.vipChannel ? "on: brokers are asked on their port - 2 (pulls excepted)" : "off"));
    }).catch(function (e) { vip.checked = !vip.checked; fail()(e); });
  });
  main.appendChild(h("div", { "class": "card" }, h("h2", { text: "VIP channel" }),
    h("label", { "class": "inline" }, vip, "Ask brokers on their VIP port (port - 2), as rocketmq-dashboard's isVIPChannel")));
  get("ops").then(function (d) { vip.checked = !!d.vipChannel; show(d); }).catch(fail(out));
  var state = section(main, "Status");
  function check() {
    get("ops/status").then(function (rows) {
      fill(state, [table([{ label: "NameServer", key: "addr", mono: true },
        { label: "Answers", value: function (r) { return h("span", { "class": "pill " + (r.ok ? "master" : "slave"), text: r.ok ? "yes" : "no" }); } },
        { label: "Brokers", key: "brokers", num: true }, { label: "Error", key: "error" }], rows),
        h("button", { "class": "secondary", id: "ops-check", text: "Check again", onclick: check })]);
    }).catch(fail(state));
  }
  check();
};

function showUser() {
  var box = document.getElementById("namesrv");
  box.textContent = "";
  append(box, [h("a", { href: "#/ops", id: "namesrv-link", title: "switch NameServer", text: "NameServer " + session.namesrv.join(";") }),
    " · mq " + session.version]);
  if (session.user) {
    append(box, [" · " + session.user + (session.readOnly ? " (read only) " : " "), h("a", { href: "#", id: "logout", text: "log out", onclick: function (e) {
      e.preventDefault();
      post("logout", {}).then(function () { session.user = null; showUser(); location.hash = "#/login"; }).catch(fail());
    } })]);
  }
}

pages.replication = function () {
  var main = page("Replication");
  var out = section(main, "Broker groups: roles and how far each slave is behind its master");
  every(5, function () {
    get("replication").then(function (groups) {
      var rows = [];
      groups.forEach(function (g) {
        g.members.forEach(function (m) {
          rows.push({ cluster: g.cluster, broker: g.brokerName, id: m.brokerId, addr: m.addr, role: m.role, end: m.commitLogMaxOffset,
            behind: m.brokerId === 0 ? "" : m.behindBytes, tps: m.putTps, error: m.error });
        });
      });
      fill(out, table([{ label: "Cluster", key: "cluster" }, { label: "Broker", key: "broker" }, { label: "ID", key: "id", num: true },
        { label: "Address", key: "addr", mono: true },
        { label: "Role", value: function (r) { return h("span", { "class": "pill " + (r.id === 0 ? "master" : "slave"), text: r.role || "unreachable" }); } },
        { label: "CommitLog end", key: "end", num: true }, { label: "Behind master (bytes)", key: "behind", num: true },
        { label: "Put TPS", key: "tps", num: true, digits: 2 }, { label: "Error", key: "error" }], rows, "the NameServer knows no broker"));
    }).catch(fail(out, true));
  });
};

// ------------------------------------------------------------------------------------------ router

function route() {
  timers.forEach(clearInterval);
  timers = [];
  var parts = (location.hash || "#/dashboard").slice(2).split("/").map(decodeURIComponent);
  var name = parts[0] || "dashboard";
  var fn = pages[name] || pages.dashboard;
  document.querySelectorAll("#nav a").forEach(function (a) {
    var p = a.getAttribute("data-page");
    a.className = (p === name || (p === "topics" && name === "topic") || (p === "consumers" && name === "consumer") ||
      (p === "messages" && (name === "message" || name === "trace"))) ? "active" : "";
  });
  fn.apply(null, parts.slice(1));
}

window.addEventListener("hashchange", route);
get("session").then(function (s) {
  session = s;
  showUser();
  if (s.loginRequired && !s.user && location.hash.indexOf("#/login") !== 0) {
    location.hash = "#/login/" + encodeURIComponent((location.hash || "#/dashboard").slice(2));
  }
  route();
}).catch(function (e) { fail(document.getElementById("main"))(e); });
