// SPDX-License-Identifier: MIT
// The official client libraries, unchanged (npm "ollama" and "openai",
// pinned in package-lock.json), against nvxd: a seeder shares the realarch
// phi3 model (random weights, the Phi-3 chat template); a second node
// lists its models, pulls the model through the mesh with ollama.pull,
// and streams a chat from it with ollama.chat and with
// openai.chat.completions. Both stream the same greedy text.
import fs from "node:fs";
import { Ollama } from "ollama";
import OpenAI from "openai";

import { check, nvx, skip, start, stop } from "./nvxd.mjs";

const phi3 = `${process.env.NVX_SHARED_MODELS}/realarch/phi3-Q4_K_M.gguf`;
if (!fs.existsSync(phi3)) skip(`${phi3} not found (set -Dshared_models)`);

const seeder = await start("seed", ["--http", "off"]);
const id = nvx(seeder.store, "add", "-q", "--pin", phi3).trim();
const node = await start("node", ["--http", "127.0.0.1:0", "--peer", seeder.addr]);

// Ollama: list, pull (streamed progress), list again, chat (streamed).
const ollama = new Ollama({ host: node.http });
let list = await ollama.list();
check(!list.models.some((m) => m.digest === id), "the model is there before the pull");
const statuses = [];
let last = null;
for await (const p of await ollama.pull({ model: id, stream: true })) {
  statuses.push(p.status);
  last = p;
  if (p.total && p.completed === p.total) console.log(`pull: ${p.status} ${p.completed}/${p.total}`);
}
check(statuses[0] === "pulling manifest", "first status: " + statuses[0]);
check(statuses.some((s) => s.startsWith("downloading ")), "no downloading status");
check(last && last.status === "success", "last status: " + JSON.stringify(last));
list = await ollama.list();
const m = list.models.find((x) => x.digest === id);
check(m, "pulled model not listed: " + JSON.stringify(list));
console.log(`ollama.list: ${list.models.map((x) => `${x.name} ${x.size}`).join(", ")}`);

const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello there" }];
let text = "", done = null;
for await (const part of await ollama.chat({ model: m.name, messages, stream: true,
  options: { temperature: 0, num_predict: 8 } })) {
  text += part.message.content;
  if (part.done) done = part;
}
check(done && done.done_reason === "length" && done.eval_count === 8,
  "ollama.chat end: " + JSON.stringify(done));
check(text.length > 0, "ollama.chat: no text");
console.log(`ollama.chat: ${JSON.stringify(text)} (${done.eval_count} tokens)`);

// OpenAI: models, streamed chat completion.
const openai = new OpenAI({ baseURL: node.http + "/v1", apiKey: "unused" });
const models = await openai.models.list();
check(models.data.some((x) => x.id === m.name), "openai.models.list: " + JSON.stringify(models.data));
const stream = await openai.chat.completions.create({ model: m.name, messages, stream: true,
  max_tokens: 8, temperature: 0 });
let otext = "", chunks = 0, finish = null;
for await (const c of stream) {
  chunks++;
  otext += c.choices[0]?.delta?.content ?? "";
  finish = c.choices[0]?.finish_reason ?? finish;
}
check(finish === "length", "finish_reason " + finish);
check(otext === text, `openai text ${JSON.stringify(otext)} != ollama text ${JSON.stringify(text)}`);
console.log(`openai.chat.completions: ${chunks} chunks, ${JSON.stringify(otext)}`);

await stop(node);
await stop(seeder);
console.log("ok");
