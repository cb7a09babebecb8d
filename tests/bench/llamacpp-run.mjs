// SPDX-License-Identifier: MIT
// llama.cpp's side of bench-runtime.sh, through node-llama-cpp (the
// prebuilt llama.cpp that npm users get). bench-runtime.sh copies this file
// into its scratch folder, next to node_modules, and runs it there.
//
//   node llamacpp-run.mjs check MODEL PROMPT N
//     loads MODEL, prints one JSON line: {"ok":true,"prompt":[ids],
//     "tokens":[N greedy ids],"text":their text}, or exits 1 with the
//     loader's error.
//   node llamacpp-run.mjs bench MODEL THREADS PROMPT N_GEN RUNS
//     per run, on an empty KV cache: the prompt in one batch, then N_GEN
//     greedy tokens one at a time; prints one JSON line per run
//     {"pp":tok/s,"tg":tok/s,"pp_cpu":tok per CPU second,"tg_cpu":..,
//     "n_prompt":..,"n_gen":..} and a last one with
//     {"rss_kib":peak RSS of this process,"base_kib":RSS before llama.cpp
//     was loaded,"system_info":llama.cpp's system info}.
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const [mode, modelPath, ...rest] = process.argv.slice(2);
const baseKib = process.resourceUsage().maxRSS;
const threads = mode === "bench" ? Number(rest[0]) : 1;
const llama = await getLlama({
    gpu: false,
    build: "never",
    logLevel: LlamaLogLevel.error,
    maxThreads: threads,
});
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const ctx = await model.createContext({
    contextSize: 512,
    batchSize: 512,
    threads: { ideal: threads, min: threads },
});
const seq = ctx.getSequence();

// CPU seconds of this process, all threads (llama.cpp's included).
function cpu() {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
}

// Greedy generation of n tokens after prompt; returns [ids, t_first, t_last,
// c_first, c_last]: wall and CPU seconds from the start of the prompt to the
// first and the last token.
async function greedy(prompt, n) {
    const ids = [];
    const t0 = performance.now(), c0 = cpu();
    let tFirst = 0, cFirst = 0, tLast = 0, cLast = 0;
    for await (const tok of seq.evaluate(prompt, { temperature: 0 })) {
        tLast = performance.now();
        cLast = cpu();
        if (ids.length === 0) {
            tFirst = tLast;
            cFirst = cLast;
        }
        ids.push(tok);
        if (ids.length >= n) break;
    }
    return [ids, (tFirst - t0) / 1e3, (tLast - t0) / 1e3, cFirst - c0, cLast - c0];
}

if (mode === "check") {
    const prompt = model.tokenize(rest[0], true);
    const [ids] = await greedy(prompt, Number(rest[1]));
    console.log(JSON.stringify({ ok: true, prompt, tokens: ids, text: model.detokenize(ids) }));
} else {
    const prompt = model.tokenize(rest[1], true);
    const nGen = Number(rest[2]), runs = Number(rest[3]);
    await greedy(prompt, 2); // warm-up: page the weights in
    await seq.clearHistory();
    for (let r = 0; r < runs; r++) {
        const [ids, tFirst, tLast, cFirst, cLast] = await greedy(prompt, nGen);
        await seq.clearHistory();
        console.log(JSON.stringify({
            pp: prompt.length / tFirst,
            tg: (ids.length - 1) / (tLast - tFirst),
            pp_cpu: prompt.length / cFirst,
            tg_cpu: (ids.length - 1) / (cLast - cFirst),
            n_prompt: prompt.length,
            n_gen: ids.length,
        }));
    }
    console.log(JSON.stringify({
        rss_kib: process.resourceUsage().maxRSS,
        base_kib: baseKib,
        system_info: llama.systemInfo,
    }));
}
await ctx.dispose();
await model.dispose();
