// Drives the dashboard in headless Chromium for the e2e test `dashboard` (crates/rowbus/tests/
// e2e/dashboard.rs), which runs rowbus with a steady workload and two sinks, and checks what
// this prints. Usage: node dashboard.mjs URL SINK_TO_PAUSE SCREENSHOT.png
// Prints one JSON line: the nodes drawn, a sink's delivered count seen twice, and whether the
// paused sink turned red (stuck) while the other did not.
import { chromium } from "playwright-core";

const [url, pausedSink, screenshot] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const result = {};
try {
  await page.goto(url);
  await page.waitForSelector(`[data-node="sink:${pausedSink}"]`, { timeout: 15000 });
  result.nodes = await page.$$eval("[data-node]", (nodes) => nodes.map((n) => n.dataset.node));
  result.conn = await page.textContent("#conn");
  const delivered = () => page.$eval('[data-node="sink:out"]', (n) => Number(n.dataset.delivered));
  const first = await delivered();
  await page.waitForFunction(
    (before) => Number(document.querySelector('[data-node="sink:out"]').dataset.delivered) > before,
    first, { timeout: 15000 });
  result.delivered = [first, await delivered()];
  result.rate = await page.$eval('[data-edge="sink:out"] text', (t) => Number(t.dataset.rate));
  const paused = await fetch(new URL(`api/v1/sinks/${pausedSink}/pause`, url), { method: "POST" });
  result.pause = paused.status;
  await page.waitForSelector(`[data-node="sink:${pausedSink}"].stuck`, { timeout: 20000 });
  result.stuck = await page.$$eval(".node.stuck", (nodes) => nodes.map((n) => n.dataset.node));
  result.stuck_chart = await page.$$eval(".chart.stuck", (charts) => charts.map((c) => c.dataset.sink));
  result.state = await page.$$eval("#sinks tr", (rows) => rows.map((r) => [...r.children].map((c) => c.textContent)[7]));
} catch (e) {
  result.error = String(e);
} finally {
  await page.screenshot({ path: screenshot, fullPage: true });
  await browser.close();
}
console.log(JSON.stringify(result));
