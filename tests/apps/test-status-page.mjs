// SPDX-License-Identifier: MIT
// nvxd's status page (GET /) in headless Chromium (Debian's chromium):
// a fetcher pulls a model from a seeder that serves slowly, and while the
// transfer runs the page, loaded by Chromium, shows that transfer and a
// model list equal to the daemon's /api/nvx/status JSON. A phone-sized
// screenshot is kept in the build dir (tests/apps/status-page.png).
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

import { build, check, nvx, root, skip, start, stop, waitFor } from "./nvxd.mjs";

const chromium = ["chromium", "chromium-browser", "google-chrome"].find((c) => {
  try {
    execFileSync("sh", ["-c", `command -v ${c}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
});
if (!chromium) skip("chromium not found (Debian package chromium; contrib/nvx-dev test installs it)");

function browse(url, extra) {
  // --virtual-time-budget lets the page's fetch and first redraw finish
  // before the DOM is dumped (virtual time waits for the network).
  return execFileSync(chromium, ["--headless", "--no-sandbox", "--disable-gpu",
    "--disable-dev-shm-usage", `--user-data-dir=${path.join(root, "chromium")}`,
    "--virtual-time-budget=3000", "--window-size=412,915", ...extra, url],
  { encoding: "utf8", timeout: 60000, stdio: ["ignore", "pipe", "ignore"] });
}

const file = path.join(root, "model.bin");
fs.writeFileSync(file, crypto.randomBytes(4 << 20));
const seeder = await start("seed", ["--http", "off"], { NVX_TEST_SERVE_DELAY_MS: "1000" });
const id = nvx(seeder.store, "add", "-q", "--pin", file).trim();
const node = await start("node", ["--http", "127.0.0.1:0", "--peer", seeder.addr]);
fs.writeFileSync(path.join(root, "local.bin"), crypto.randomBytes(100000));
const local = nvx(node.store, "add", "-q", "--pin", "--name", "local-model",
  path.join(root, "local.bin")).trim();

// A pull that runs while the page is looked at (the seeder is slow).
const ctl = new AbortController();
const pull = fetch(node.http + "/api/pull", { method: "POST", body: JSON.stringify({ model: id }),
  signal: ctl.signal }).then((r) => r.text()).catch(() => "");
const status = async () => (await fetch(node.http + "/api/nvx/status")).json();
await waitFor(async () => (await status()).node.transfers.some((x) => x.model === id && x.bytes_done > 0),
  "the transfer starting");

const dom = browse(node.http + "/", ["--dump-dom"]);
const json = await status();
check(/<body[^>]*data-loaded="yes"/.test(dom), "the page did not load its JSON:\n" + dom.slice(0, 2000));
// The running transfer, with its progress.
const xrow = new RegExp(`<tr data-row="transfers:\\d+" data-percent="(\\d+)"><td>${id.slice(0, 16)}</td>`);
const xm = xrow.exec(dom);
check(xm, "no running transfer of " + id + " on the page:\n" + dom);
check(+xm[1] < 100, "the transfer was over before the page looked");
// The model list: every model of the JSON, by id, and nothing else.
const rows = [...dom.matchAll(/<tr data-row="models:([0-9a-f]{64})">(.*?)<\/tr>/g)];
const pageIds = rows.map((r) => r[1]).sort();
const jsonIds = json.models.map((m) => m.id).sort();
check(JSON.stringify(pageIds) === JSON.stringify(jsonIds),
  `page models ${pageIds} != JSON models ${jsonIds}`);
const lrow = rows.find((r) => r[1] === local)[2];
check(lrow.includes("<td>local-model</td>") && lrow.includes("<td>pinned, shared, 0 signatures</td>"),
  "the local model's row: " + lrow);
check(dom.includes(node.addr.split(":")[0]) && dom.includes(json.node.id),
  "the node's id and address are not on the page");

const shot = path.join(build, "tests/apps/status-page.png");
fs.mkdirSync(path.dirname(shot), { recursive: true });
browse(node.http + "/", [`--screenshot=${shot}`]);
check(fs.statSync(shot).size > 1000, "no screenshot");
console.log(`page shows transfer at ${xm[1]}% and ${pageIds.length} models; screenshot ${shot}`);

ctl.abort();
await pull;
await stop(node);
await stop(seeder);
console.log("ok");
