// SPDX-License-Identifier: MIT
// Real nvxd processes for the node tests of tests/apps: each with a store
// in a temp dir, peers on 127.0.0.1:0, no LAN discovery, its log in a
// file; waits are polls with deadlines, never fixed sleeps. Every daemon
// left is killed at exit.
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const build = process.env.NVX_BUILD_ROOT;
export const WAIT_MS = 30000;
export const root = fs.mkdtempSync(path.join(os.tmpdir(), "nvx-apps-"));
const daemons = [];

process.on("exit", () => {
  for (const d of daemons) {
    try { d.proc.kill("SIGKILL"); } catch { /* gone already */ }
  }
  if (!process.env.NVX_KEEP_TMP) fs.rmSync(root, { recursive: true, force: true });
});

export function skip(msg) {
  console.log("skipped: " + msg);
  process.exit(77);
}

export function fail(msg) {
  console.error("FAIL: " + msg);
  for (const d of daemons) {
    const t = fs.readFileSync(d.log, "utf8");
    console.error(`---- ${d.name} log (tail) ----\n` + t.slice(-3000));
  }
  process.exit(1);
}

export function check(cond, msg) {
  if (!cond) fail(msg);
}

export function nvx(store, ...args) {
  return execFileSync(path.join(build, "cli/nvx"), ["--store", store, ...args], { encoding: "utf8" });
}

export async function waitFor(fn, what, ms = WAIT_MS) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) fail(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Starts nvxd-test on a new store; resolves once its peer listener and
// (unless --http off) its HTTP API are up. d.addr, d.http, d.store.
export async function start(name, args = [], env = {}) {
  const store = path.join(root, name);
  fs.mkdirSync(store, { recursive: true });
  const log = path.join(root, name + ".log");
  const fd = fs.openSync(log, "a");
  const proc = spawn(path.join(build, "daemon/nvxd-test"),
    ["--store", store, "--listen", "127.0.0.1:0", "--no-discovery", "--no-dht", "--no-upnp", ...args],
    { stdio: ["ignore", fd, fd], env: { ...process.env, ...env } });
  const d = { name, store, log, proc };
  daemons.push(d);
  const wantHttp = !args.includes("off");
  const text = await waitFor(() => {
    if (proc.exitCode !== null) fail(`nvxd ${name} exited (${proc.exitCode})`);
    const t = fs.readFileSync(log, "utf8");
    return /listening on \S+/.test(t) && (!wantHttp || /HTTP API on http:/.test(t)) ? t : null;
  }, `nvxd ${name} start`);
  d.addr = /listening on (\S+)/.exec(text)[1];
  const m = /HTTP API on http:\/\/(127\.0\.0\.1:\d+)/.exec(text);
  d.http = m ? "http://" + m[1] : null;
  return d;
}

export async function stop(d) {
  if (d.proc.exitCode !== null) return;
  const gone = new Promise((r) => d.proc.on("exit", r));
  d.proc.kill("SIGTERM");
  await gone;
  check(d.proc.exitCode === 0, `nvxd ${d.name} exit status ${d.proc.exitCode}`);
}
