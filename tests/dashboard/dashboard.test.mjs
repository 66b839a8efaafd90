// The dashboard in headless Chromium while `rapidmq bench` publishes and consumes: the charts
// update with non-zero rates, the bench topic shows in the topic list, a screenshot is saved as
// a test artifact, and the page requests nothing from any host but the broker.
//
//   RAPIDMQ_BIN=path/to/rapidmq CHROMIUM=/usr/bin/chromium node --test dashboard.test.mjs
//
// The broker is started by the shared launch protocol (ephemeral ports, --ready-file).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, existsSync, readFileSync, mkdirSync, rmSync, watch } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const BIN = process.env.RAPIDMQ_BIN;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARTIFACTS = process.env.ARTIFACTS || join(here, "artifacts");
const TOPIC = "dashboard-bench";
const PATIENCE_MS = 60_000;

let broker;
let brokerLog = "";
let addresses;

/** Resolves once `file` exists, watching its directory (no polling sleeps). */
function waitForFile(file, timeoutMs) {
  return new Promise((resolve, reject) => {
    const dir = dirname(file);
    const timer = setTimeout(() => {
      watcher.close();
      reject(new Error(`${file} did not appear within ${timeoutMs} ms; broker log:\n${brokerLog}`));
    }, timeoutMs);
    const watcher = watch(dir, () => {
      if (existsSync(file)) {
        clearTimeout(timer);
        watcher.close();
        resolve();
      }
    });
    if (existsSync(file)) {
      clearTimeout(timer);
      watcher.close();
      resolve();
    }
  });
}

function exited(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", resolve);
  });
}

/** Starts `rapidmq serve` with `extraArgs` in its own temporary directory; resolves once ready. */
async function launch(extraArgs = []) {
  const dir = mkdtempSync(join(tmpdir(), "rapidmq-dashboard-"));
  const ready = join(dir, "ready.json");
  const child = spawn(BIN, [
    "serve",
    "--data-dir", join(dir, "data"),
    "--grpc-listen", "127.0.0.1:0",
    "--http-listen", "127.0.0.1:0",
    "--ready-file", ready,
    ...extraArgs,
  ], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout.on("data", (d) => (brokerLog += d));
  child.stderr.on("data", (d) => (brokerLog += d));
  await waitForFile(ready, PATIENCE_MS);
  return { child, dir, addresses: JSON.parse(readFileSync(ready, "utf8")) };
}

async function stop(launched) {
  if (launched.child.exitCode === null) {
    launched.child.kill("SIGTERM");
    await exited(launched.child);
  }
  rmSync(launched.dir, { recursive: true, force: true });
}

function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container has no user namespaces for the sandbox; /dev/shm may be tiny.
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  });
}

before(async () => {
  assert.ok(BIN, "set RAPIDMQ_BIN to the rapidmq binary");
  broker = await launch();
  addresses = broker.addresses;
});

after(async () => {
  if (broker) await stop(broker);
});

test("the dashboard shows live rates and the bench topic while a bench runs, fetching nothing from other hosts", async () => {
  const origin = `http://${addresses.http}`;
  const bench = spawn(BIN, [
    "bench", "pubsub",
    "--server", `http://${addresses.grpc}`,
    "--topic", TOPIC,
    "--partitions", "2",
    "--duration", "60s",
    "--rate", "2000",
    "--batch", "100",
  ], { stdio: ["ignore", "pipe", "pipe"] });
  let benchLog = "";
  bench.stdout.on("data", (d) => (benchLog += d));
  bench.stderr.on("data", (d) => (benchLog += d));

  const browser = await launchBrowser();
  const requested = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1100 } });
    context.on("request", (request) => requested.push(request.url()));
    const page = await context.newPage();
    const consoleErrors = [];
    page.on("pageerror", (err) => consoleErrors.push(String(err)));
    page.on("console", (msg) => { if (msg.type() === "error") consoleErrors.push(msg.text()); });

    await page.goto(origin + "/", { waitUntil: "load" });
    assert.equal(await page.title(), "RapidMQ");

    // Charts update, with messages flowing in and out.
    await page.waitForFunction(() => {
      const c = document.getElementById("chart-rates");
      const last = JSON.parse(c.dataset.last || "[0,0]");
      return Number(c.dataset.updates) >= 3 && last[0] > 0 && last[1] > 0;
    }, null, { timeout: PATIENCE_MS });
    const first = Number(await page.locator("#chart-rates").getAttribute("data-updates"));
    await page.waitForFunction((n) => Number(document.getElementById("chart-rates").dataset.updates) >= n + 2,
      first, { timeout: PATIENCE_MS });
    const [inRate, outRate] = JSON.parse(await page.locator("#chart-rates").getAttribute("data-last"));
    assert.ok(inRate > 0 && outRate > 0, `rates ${inRate} / ${outRate}`);
    assert.ok(Number(await page.locator("#chart-latency").getAttribute("data-updates")) >= 3);
    assert.ok(Number(await page.locator("#chart-connections").getAttribute("data-updates")) >= 3);
    const inText = await page.locator("#in-rate").textContent();
    assert.notEqual(inText, "–");
    assert.ok(parseFloat(inText) > 0, `in-rate shows ${inText}`);

    // The bench topic is listed with its partitions and a non-zero rate.
    const row = page.locator(`#topics tr[data-topic="${TOPIC}"]`);
    await row.waitFor({ timeout: PATIENCE_MS });
    const cells = await row.locator("td").allTextContents();
    assert.equal(cells[0], TOPIC);
    assert.equal(cells[2], "2");
    await page.waitForFunction((topic) => {
      const r = document.querySelector(`#topics tr[data-topic="${topic}"]`);
      return r && parseFloat(r.cells[5].textContent) > 0;
    }, TOPIC, { timeout: PATIENCE_MS });
    // The bench's subscription is listed; health is reported (`degraded` after a slow fsync on a
    // loaded machine), with no storage errors.
    assert.ok(await page.locator(`#subscriptions tr[data-subscription^="${TOPIC}/"]`).count() >= 1);
    assert.match(await page.locator("#health").getAttribute("data-status"), /^(ok|degraded)$/);
    assert.equal(await page.locator("#health-table tr:first-child td.num").textContent(), "0");
    // A single node has no cluster section.
    assert.equal(await page.locator("#cluster-section").isHidden(), true);

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, "dashboard.png");
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(existsSync(shot));

    // Nothing but the broker was asked for anything.
    assert.ok(requested.length >= 3, `requests: ${requested}`);
    for (const url of requested) {
      const u = new URL(url);
      assert.ok(u.protocol === "data:" || u.origin === origin, `request to another host: ${url}`);
    }
    assert.deepEqual(consoleErrors, []);
    // The bench ran the whole time (it stops after 60 s; we stop it sooner).
    assert.equal(bench.exitCode, null, `the bench ended early:\n${benchLog}`);
    await context.close();
  } finally {
    await browser.close();
    if (bench.exitCode === null) {
      bench.kill("SIGTERM");
      await exited(bench);
    }
  }
});

test("in cluster mode the dashboard shows the metadata group as this node sees it", async () => {
  // A one-member cluster: it elects itself, with no other process to start.
  const node = await launch(["--node-id", "1", "--peers", "1=127.0.0.1:0"]);
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    await page.goto(`http://${node.addresses.http}/`, { waitUntil: "load" });
    const row = page.locator('#cluster tr[data-group="metadata"]');
    await row.waitFor({ timeout: PATIENCE_MS });
    await page.waitForFunction(() => {
      const r = document.querySelector('#cluster tr[data-group="metadata"]');
      return r && r.cells[2].textContent === "1 (this node)";
    }, null, { timeout: PATIENCE_MS });
    const cells = await row.locator("td").allTextContents();
    assert.equal(cells[1], "1", "this node's id");
    assert.ok(Number(cells[3]) >= 1, `term ${cells[3]}`);
    assert.equal(cells[6], "no followers");
    assert.equal(await page.locator("#cluster-section").isVisible(), true);
  } finally {
    await browser.close();
    await stop(node);
  }
});
