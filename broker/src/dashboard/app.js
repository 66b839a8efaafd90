// The RapidMQ dashboard: subscribes to /dashboard/events (Server-Sent Events, one `overview`
// snapshot per second) and draws plain canvas charts and tables. No libraries, nothing fetched
// from any other host.
"use strict";

const HISTORY = 120; // points kept per chart (two minutes at one per second)

const $ = (id) => document.getElementById(id);

function fmtRate(v) {
  if (v == null) return "–";
  if (v >= 1e6) return (v / 1e6).toFixed(2) + " M";
  if (v >= 1e4) return (v / 1e3).toFixed(1) + " k";
  return v >= 100 ? Math.round(v).toString() : v.toFixed(1);
}

function fmtMs(v) {
  if (v == null) return "–";
  return v < 1 ? v.toFixed(2) : v < 10 ? v.toFixed(1) : Math.round(v).toString();
}

function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

function fmtUptime(ms) {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return "up " + (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + (s % 60) + "s";
}

// A line chart on a canvas: series of numbers (null = gap), auto-scaled from zero.
class Chart {
  constructor(canvas, colors) {
    this.canvas = canvas;
    this.colors = colors;
    this.series = colors.map(() => []);
    this.updates = 0;
  }

  push(values) {
    values.forEach((v, i) => {
      const s = this.series[i];
      s.push(v);
      if (s.length > HISTORY) s.shift();
    });
    this.updates++;
    this.canvas.dataset.updates = String(this.updates);
    this.canvas.dataset.last = JSON.stringify(values);
    this.draw();
  }

  draw() {
    const c = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const w = c.clientWidth || 600, h = c.clientHeight || 180;
    if (c.width !== Math.round(w * ratio)) { c.width = Math.round(w * ratio); c.height = Math.round(h * ratio); }
    const g = c.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, w, h);
    const style = getComputedStyle(document.documentElement);
    const left = 48, bottom = 18, top = 6, right = 6;
    let max = 0;
    for (const s of this.series) for (const v of s) if (v != null && v > max) max = v;
    max = max > 0 ? niceCeil(max) : 1;
    g.font = "11px system-ui, sans-serif";
    g.fillStyle = style.getPropertyValue("--muted");
    g.strokeStyle = style.getPropertyValue("--line");
    g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = top + ((h - top - bottom) * i) / 4;
      g.beginPath(); g.moveTo(left, y); g.lineTo(w - right, y); g.stroke();
      g.fillText(fmtRate(max * (1 - i / 4)), 2, y + 4);
    }
    const span = HISTORY - 1;
    const x = (i, n) => left + ((w - left - right) * (span - (n - 1 - i))) / span;
    const y = (v) => top + (h - top - bottom) * (1 - v / max);
    this.series.forEach((s, k) => {
      g.strokeStyle = style.getPropertyValue(this.colors[k]);
      g.lineWidth = 2;
      g.beginPath();
      let pen = false;
      s.forEach((v, i) => {
        if (v == null) { pen = false; return; }
        if (pen) g.lineTo(x(i, s.length), y(v)); else g.moveTo(x(i, s.length), y(v));
        pen = true;
      });
      g.stroke();
    });
  }
}

function niceCeil(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const charts = {
  rates: new Chart($("chart-rates"), ["--in", "--out"]),
  latency: new Chart($("chart-latency"), ["--p50", "--p99"]),
  connections: new Chart($("chart-connections"), ["--grpc", "--http"]),
};

function cell(row, text, numeric) {
  const td = row.insertCell();
  td.textContent = text;
  if (numeric) td.className = "num";
  return td;
}

function fillTable(id, rows, columns, empty) {
  const body = $(id).tBodies[0];
  body.replaceChildren();
  if (rows.length === 0) {
    const td = body.insertRow().insertCell();
    td.colSpan = columns;
    td.className = "empty";
    td.textContent = empty;
    return;
  }
  for (const fill of rows) fill(body.insertRow());
}

function render(o) {
  const t = o.totals;
  $("in-rate").textContent = fmtRate(t.messages_in_per_s);
  $("out-rate").textContent = fmtRate(t.messages_out_per_s);
  $("publish-latency").textContent = fmtMs(t.publish_p50_ms) + " / " + fmtMs(t.publish_p99_ms) + " ms";
  $("e2e-latency").textContent = fmtMs(t.end_to_end_p50_ms) + " / " + fmtMs(t.end_to_end_p99_ms) + " ms";
  $("connections").textContent = t.connections_grpc + " gRPC · " + t.connections_http + " HTTP";
  $("uptime").textContent = fmtUptime(o.uptime_ms);
  charts.rates.push([t.messages_in_per_s, t.messages_out_per_s]);
  charts.latency.push([t.publish_p50_ms, t.publish_p99_ms]);
  charts.connections.push([t.connections_grpc, t.connections_http]);

  fillTable("topics", o.topics.map((tp) => (row) => {
    row.dataset.topic = tp.name;
    cell(row, tp.name);
    cell(row, tp.tenant);
    cell(row, tp.partitions, true);
    cell(row, tp.messages.toLocaleString(), true);
    cell(row, fmtBytes(tp.bytes), true);
    cell(row, tp.in_per_s == null ? "(_other)" : fmtRate(tp.in_per_s), true);
    cell(row, tp.out_per_s == null ? "(_other)" : fmtRate(tp.out_per_s), true);
  }), 7, "no topics yet");

  fillTable("subscriptions", o.subscriptions.map((s) => (row) => {
    row.dataset.subscription = s.topic + "/" + s.name;
    cell(row, s.name);
    cell(row, s.topic);
    cell(row, s.mode);
    cell(row, s.lag.toLocaleString(), true);
    cell(row, s.members, true);
    cell(row, s.mode === "queue" ? s.in_flight : "–", true);
    cell(row, s.mode === "queue" ? s.redeliveries : "–", true);
    cell(row, s.mode === "queue" ? s.dead_lettered : "–", true);
  }), 8, "no subscriptions yet");

  // Cluster mode only: each raft group as this node sees it.
  const groups = o.cluster || [];
  $("cluster-section").hidden = groups.length === 0;
  fillTable("cluster", groups.map((g) => (row) => {
    row.dataset.group = g.group;
    cell(row, g.group);
    cell(row, g.node_id, true);
    cell(row, g.leader == null ? "none (election)" : g.leader === g.node_id ? g.leader + " (this node)" : g.leader, true);
    cell(row, g.term, true);
    cell(row, g.applied_index.toLocaleString(), true);
    cell(row, g.leader_changes, true);
    cell(row, g.leader === g.node_id
      ? g.replication_lag.map(([peer, lag]) => "node " + peer + ": " + (lag == null ? "not yet" : lag)).join(", ") || "no followers"
      : "known on the leader");
  }), 7, "");
  // The partition groups, summed (one row however many there are).
  const p = o.cluster_partitions;
  if (groups.length > 0 && p) {
    const row = $("cluster").tBodies[0].insertRow();
    row.dataset.group = "partitions";
    cell(row, "partitions (" + p.groups + ")");
    cell(row, groups[0].node_id, true);
    cell(row, p.leading + " led here, " + p.leaderless + " leaderless", true);
    cell(row, p.elections + " elections", true);
    cell(row, "–", true);
    cell(row, p.leader_changes, true);
    cell(row, "RPCs sent: " + p.traffic.map(([peer, rpcs, msgs]) => "node " + peer + ": " + rpcs.toLocaleString() + " (" + msgs.toLocaleString() + " messages)").join(", "));
  }

  const h = o.health;
  const badge = $("health");
  badge.dataset.status = h.status;
  badge.textContent = h.status;
  fillTable("health-table", [
    ["Storage errors", h.storage_errors],
    ["Slow fsyncs", h.slow_fsyncs],
    ["fsyncs", h.fsyncs.toLocaleString()],
    ["fsync p99 (last interval)", fmtMs(h.fsync_p99_ms) + " ms"],
    ["Errors answered to clients", h.errors],
    ["Metrics on the hot path", h.metrics_enabled ? "on" : "off"],
    ["Flow events kept", h.flow_events_capacity.toLocaleString()],
  ].map(([k, v]) => (row) => { cell(row, k); cell(row, String(v), true); }), 2, "");
}

function connect() {
  const source = new EventSource("/dashboard/events");
  source.addEventListener("overview", (e) => render(JSON.parse(e.data)));
  source.onerror = () => {
    const badge = $("health");
    badge.dataset.status = "disconnected";
    badge.textContent = "disconnected — retrying";
  };
}

window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.draw()));
connect();
