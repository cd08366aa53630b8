// xnai's OpenAI-compatible API driven by the official `openai` npm client:
// the same checks as tests/integration/test_openai_api.py, but through the
// client real applications use, so its request encoding, SSE parsing, base64
// embedding decoding and typed errors are exercised against the real binary.
//
// Two tiny random-weight models are synthesized once (`xnai model synth`, no
// download). One server answers every test; a second one with
// `--parallel 1 --max-queue 1` is started for the full-queue test. The text is
// gibberish: the tests check shapes, determinism, usage counts and
// finish_reason, never meaning, and no assertion depends on timing.
//
// Run by run.sh (ctest: integration.openai_client) with XNAI_BIN set; by hand:
//   XNAI_BIN=/work/main/build/xnai node --test openai_client.test.mjs

import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import OpenAI from "openai";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const READY_RE = /^xnai: serving on http:\/\/(\[[^\]]+\]|[^:/]+):(\d+)\s*$/;
const CHAT_MODEL = "tiny-chat";
const EMBED_MODEL = "tiny-embed";

function findBinary() {
  if (process.env.XNAI_BIN) return path.resolve(process.env.XNAI_BIN);
  const candidate = path.resolve(HERE, "..", "..", "build", "xnai");
  if (fs.existsSync(candidate)) return candidate;
  throw new Error("xnai binary not found: set XNAI_BIN or build it (make build)");
}

// The caller's environment without XNAI_* variables (no configuration of the
// developer leaks into the servers).
function cleanEnv() {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("XNAI_")) env[key] = value;
  }
  return env;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// One `xnai serve` process: cwd and data dir in its own temp folder, stderr
// (JSON log lines) to a file, the port parsed from the one ready line.
class Server {
  constructor(name, root, args) {
    this.name = name;
    this.dir = fs.mkdtempSync(path.join(root, `${name}-`));
    this.args = args;
    this.logPath = path.join(this.dir, "stderr.log");
    this.proc = null;
    this.exit = null; // resolves to {code, signal}
    this.exitStatus = null;
  }

  async start(timeoutMs = 60_000) {
    const logFd = fs.openSync(this.logPath, "w");
    const command = ["serve", "--listen", "127.0.0.1:0", "--data", path.join(this.dir, "data"),
                     ...this.args];
    this.proc = spawn(BIN, command, { cwd: this.dir, env: cleanEnv(),
                                      stdio: ["ignore", "pipe", logFd] });
    fs.closeSync(logFd);
    RUNNING.add(this);
    this.exit = new Promise((resolve) => {
      this.proc.on("exit", (code, signal) => {
        this.exitStatus = { code, signal };
        RUNNING.delete(this);
        resolve(this.exitStatus);
      });
    });
    const lines = readline.createInterface({ input: this.proc.stdout });
    const firstLine = new Promise((resolve) => {
      lines.once("line", resolve);
      lines.once("close", () => resolve(null));
    });
    let timer;
    const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve("timeout"), timeoutMs); });
    const line = await Promise.race([firstLine, timeout]);
    clearTimeout(timer);
    if (line === "timeout" || line === null) {
      this.proc.kill("SIGKILL");
      await this.exit;
      throw new Error(`${this.name}: xnai serve ${line === null ? "exited" : "printed nothing"} ` +
                      `before its ready line (exit ${JSON.stringify(this.exitStatus)})\n` +
                      this.logTail());
    }
    const m = READY_RE.exec(line);
    if (!m) {
      this.proc.kill("SIGKILL");
      await this.exit;
      throw new Error(`${this.name}: unexpected ready line ${JSON.stringify(line)}`);
    }
    this.host = m[1].replace(/^\[|\]$/g, "");
    this.port = Number(m[2]);
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  client(options = {}) {
    return new OpenAI({ baseURL: `${this.url}/v1`, apiKey: "unused", maxRetries: 0,
                        timeout: 180_000, ...options });
  }

  async metrics() {
    const response = await fetch(`${this.url}/metrics`);
    assert.equal(response.status, 200, `GET /metrics answered ${response.status}`);
    return response.text();
  }

  logTail(count = 40) {
    let text = "";
    try {
      text = fs.readFileSync(this.logPath, "utf8");
    } catch {
      // no log yet
    }
    const lines = text.split("\n").filter((l) => l.length > 0).slice(-count);
    return `--- ${this.name} server stderr (last ${lines.length} lines) ---\n${lines.join("\n")}`;
  }

  // SIGTERM, then SIGKILL if it has not exited within timeoutMs. Returns the
  // exit status ({code, signal}) and whether it had to be killed.
  async stop(timeoutMs = 30_000) {
    if (!this.proc) return null;
    if (this.exitStatus === null) {
      this.proc.kill("SIGTERM");
      let timer;
      const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve("timeout"), timeoutMs); });
      const status = await Promise.race([this.exit, timeout]);
      clearTimeout(timer);
      if (status === "timeout") {
        this.proc.kill("SIGKILL");
        await this.exit;
        return { ...this.exitStatus, killed: true };
      }
    }
    return { ...this.exitStatus, killed: false };
  }
}

const BIN = findBinary();
const ROOT = fs.mkdtempSync(path.join(os.tmpdir(), "xnai-openai-client-"));
const RUNNING = new Set(); // servers whose process has not exited
const SERVERS = []; // every server started, for the logs
const MODELS = {};
let main; // the server every test but the full-queue one talks to
let openai; // its client

// Last resort: a server must not outlive the test process, whatever happened.
process.on("exit", () => {
  for (const server of RUNNING) server.proc.kill("SIGKILL");
});

async function startServer(name, ...extra) {
  const server = new Server(name, ROOT, ["--model", MODELS[CHAT_MODEL], "--embed-model",
                                         MODELS[EMBED_MODEL], "--threads", "2", ...extra]);
  SERVERS.push(server);
  return server.start();
}

// A test whose failure also reports the servers' stderr tails.
function apiTest(name, fn) {
  test(name, async (t) => {
    try {
      await fn(t);
    } catch (error) {
      // Diagnostics print under the failed test in every reporter.
      for (const server of SERVERS) {
        for (const line of server.logTail().split("\n")) t.diagnostic(line);
      }
      throw error;
    }
  });
}

// Runs `fn` and asserts that it rejects with an instance of `errorClass`;
// returns the error for further checks.
async function expectError(errorClass, fn) {
  try {
    await fn();
  } catch (error) {
    assert.ok(error instanceof errorClass,
              `expected ${errorClass.name}, got ${error?.constructor?.name}: ${error?.message}`);
    return error;
  }
  assert.fail(`expected ${errorClass.name}, but the request succeeded`);
}

function metric(text, series) {
  for (const line of text.split("\n")) {
    if (line.startsWith(series + " ")) return Number(line.trim().split(/\s+/).pop());
  }
  return null;
}

function assertUsage(usage, maxTokens) {
  assert.ok(usage, "usage is missing");
  assert.ok(Number.isInteger(usage.prompt_tokens) && usage.prompt_tokens > 0, JSON.stringify(usage));
  assert.ok(Number.isInteger(usage.completion_tokens) && usage.completion_tokens >= 0,
            JSON.stringify(usage));
  assert.ok(usage.completion_tokens <= maxTokens, JSON.stringify(usage));
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
}

before(async () => {
  const run = promisify(execFile);
  for (const [name, preset, type] of [[CHAT_MODEL, "tiny-qwen3", "Q8_0"],
                                      [EMBED_MODEL, "tiny-bert", "F16"]]) {
    const out = path.join(ROOT, `${name}.gguf`);
    await run(BIN, ["model", "synth", "--preset", preset, "--type", type, "--out", out],
              { cwd: ROOT, env: cleanEnv(), timeout: 120_000 });
    MODELS[name] = out;
  }
  main = await startServer("main");
  openai = main.client();
});

after(async () => {
  const problems = [];
  for (const server of SERVERS) {
    const status = await server.stop();
    if (status && (status.killed || status.code !== 0)) {
      problems.push(`${server.name}: exit ${JSON.stringify(status)} after SIGTERM\n${server.logTail()}`);
    }
  }
  fs.rmSync(ROOT, { recursive: true, force: true });
  if (problems.length) throw new Error(problems.join("\n"));
});

apiTest("models.list() lists both models by file name", async () => {
  const page = await openai.models.list();
  const ids = [];
  for await (const model of page) {
    ids.push(model.id);
    assert.equal(model.object, "model");
    assert.equal(model.owned_by, "xnai");
    assert.ok(Number.isInteger(model.created), JSON.stringify(model));
  }
  assert.deepEqual(ids, [CHAT_MODEL, EMBED_MODEL]);
});

apiTest("models.retrieve() finds a model and 404s an unknown one", async () => {
  const model = await openai.models.retrieve(CHAT_MODEL);
  assert.equal(model.id, CHAT_MODEL);
  assert.equal(model.object, "model");
  const error = await expectError(OpenAI.NotFoundError, () => openai.models.retrieve("gpt-4"));
  assert.equal(error.status, 404);
  assert.equal(error.code, "model_not_found");
});

apiTest("chat.completions.create: shape, usage, finish_reason, determinism", async () => {
  const request = {
    model: CHAT_MODEL,
    messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello there" }],
    max_tokens: 6,
    temperature: 0,
  };
  const completion = await openai.chat.completions.create(request);
  assert.match(completion.id, /^chatcmpl-/);
  assert.equal(completion.object, "chat.completion");
  assert.equal(completion.model, CHAT_MODEL);
  assert.ok(Number.isInteger(completion.created));
  assert.equal(completion.choices.length, 1);
  const [choice] = completion.choices;
  assert.equal(choice.index, 0);
  assert.equal(choice.message.role, "assistant");
  assert.equal(typeof choice.message.content, "string");
  assert.ok(["stop", "length"].includes(choice.finish_reason), choice.finish_reason);
  assertUsage(completion.usage, 6);
  assert.ok(completion.usage.prompt_tokens > 5, JSON.stringify(completion.usage));
  if (choice.finish_reason === "length") assert.equal(completion.usage.completion_tokens, 6);

  // Greedy decoding: the same request gives the same text.
  const again = await openai.chat.completions.create(request);
  assert.equal(again.choices[0].message.content, choice.message.content);
  assert.equal(again.choices[0].finish_reason, choice.finish_reason);
  assert.notEqual(again.id, completion.id);

  // max_completion_tokens, the newer name, bounds the output the same way.
  const bounded = await openai.chat.completions.create({
    model: CHAT_MODEL, messages: request.messages, max_completion_tokens: 3, temperature: 0,
  });
  assertUsage(bounded.usage, 3);
  if (bounded.choices[0].finish_reason === "length") assert.equal(bounded.usage.completion_tokens, 3);
});

apiTest("chat.completions.create with logprobs and top_logprobs", async () => {
  const completion = await openai.chat.completions.create({
    model: CHAT_MODEL, messages: [{ role: "user", content: "x" }], max_tokens: 3, temperature: 0,
    logprobs: true, top_logprobs: 2,
  });
  const content = completion.choices[0].logprobs.content;
  assert.equal(content.length, completion.usage.completion_tokens);
  for (const entry of content) {
    assert.equal(typeof entry.token, "string");
    assert.ok(entry.logprob <= 0, JSON.stringify(entry));
    assert.ok(entry.top_logprobs.length <= 2, JSON.stringify(entry));
  }
  if (content.length > 0) assert.equal(content[0].top_logprobs[0].token, content[0].token);
});

apiTest("chat streaming: deltas concatenate to the non-streaming content, usage last", async () => {
  const messages = [{ role: "user", content: "Count with me" }];
  const whole = await openai.chat.completions.create({
    model: CHAT_MODEL, messages, max_tokens: 12, temperature: 0,
  });
  const stream = await openai.chat.completions.create({
    model: CHAT_MODEL, messages, max_tokens: 12, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk); // never break: that would cancel
  assert.ok(chunks.length >= 2, `only ${chunks.length} chunks`);
  assert.equal(chunks[0].choices[0].delta.role, "assistant");
  for (const chunk of chunks) {
    assert.equal(chunk.object, "chat.completion.chunk");
    assert.equal(chunk.id, chunks[0].id);
    assert.equal(chunk.model, CHAT_MODEL);
  }
  const text = chunks.filter((c) => c.choices.length > 0)
                     .map((c) => c.choices[0].delta.content ?? "").join("");
  assert.equal(text, whole.choices[0].message.content);
  const finals = chunks.filter((c) => c.choices.length > 0 && c.choices[0].finish_reason);
  assert.equal(finals.length, 1);
  assert.equal(finals[0].choices[0].finish_reason, whole.choices[0].finish_reason);
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assertUsage(last.usage, 12);
  assert.deepEqual(
    [last.usage.prompt_tokens, last.usage.completion_tokens],
    [whole.usage.prompt_tokens, whole.usage.completion_tokens]);
  for (const chunk of chunks.slice(0, -1)) assert.ok(!chunk.usage, JSON.stringify(chunk));
});

apiTest("chat.completions.stream() helper assembles the same completion", async () => {
  const messages = [{ role: "user", content: "Assemble this" }];
  const whole = await openai.chat.completions.create({
    model: CHAT_MODEL, messages, max_tokens: 8, temperature: 0,
  });
  const runner = openai.chat.completions.stream({
    model: CHAT_MODEL, messages, max_tokens: 8, temperature: 0,
  });
  let deltas = "";
  runner.on("content", (delta) => { deltas += delta; });
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].message.content, whole.choices[0].message.content);
  assert.equal(final.choices[0].finish_reason, whole.choices[0].finish_reason);
  assert.equal(deltas, whole.choices[0].message.content);
});

apiTest("completions.create: non-streaming with logprobs, and streaming", async () => {
  const completion = await openai.completions.create({
    model: CHAT_MODEL, prompt: "Once upon a time", max_tokens: 5, temperature: 0, logprobs: 2,
  });
  assert.equal(completion.object, "text_completion");
  assert.equal(completion.model, CHAT_MODEL);
  const [choice] = completion.choices;
  assert.equal(choice.index, 0);
  assert.equal(typeof choice.text, "string");
  assert.ok(["stop", "length"].includes(choice.finish_reason), choice.finish_reason);
  assertUsage(completion.usage, 5);
  assert.equal(choice.logprobs.tokens.length, completion.usage.completion_tokens);
  assert.equal(choice.logprobs.token_logprobs.length, choice.logprobs.tokens.length);
  choice.logprobs.token_logprobs.forEach((logprob, i) => {
    assert.ok(logprob <= 0, String(logprob));
    assert.ok(Object.keys(choice.logprobs.top_logprobs[i]).length <= 2);
  });

  const stream = await openai.completions.create({
    model: CHAT_MODEL, prompt: "Once upon a time", max_tokens: 5, temperature: 0, stream: true,
  });
  let text = "";
  let finishReason = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, "text_completion");
    if (chunk.choices.length === 0) continue;
    text += chunk.choices[0].text;
    if (chunk.choices[0].finish_reason) finishReason = chunk.choices[0].finish_reason;
  }
  assert.equal(text, choice.text);
  assert.equal(finishReason, choice.finish_reason);
});

apiTest("embeddings.create: float and the client's default base64 agree", async () => {
  const floats = await openai.embeddings.create({
    model: EMBED_MODEL, input: ["first text", "second"], encoding_format: "float",
  });
  assert.equal(floats.object, "list");
  assert.equal(floats.model, EMBED_MODEL);
  assert.deepEqual(floats.data.map((d) => d.index), [0, 1]);
  assert.ok(floats.usage.prompt_tokens > 2, JSON.stringify(floats.usage));
  const vector = floats.data[0].embedding;
  assert.ok(Array.isArray(vector) && vector.length > 8, `dimension ${vector.length}`);
  const norm = vector.reduce((sum, v) => sum + v * v, 0);
  assert.ok(Math.abs(norm - 1) < 1e-3, `squared norm ${norm}`);
  assert.notDeepEqual(floats.data[1].embedding, vector);

  // No encoding_format: the client asks for base64 and decodes it itself.
  const decoded = await openai.embeddings.create({ model: EMBED_MODEL, input: "first text" });
  assert.equal(decoded.data.length, 1);
  const other = Array.from(decoded.data[0].embedding);
  assert.equal(other.length, vector.length);
  other.forEach((v, i) => assert.ok(Math.abs(v - vector[i]) < 1e-5, `[${i}] ${v} vs ${vector[i]}`));

  // The raw wire format really is base64 of little-endian float32.
  const raw = await openai.embeddings.create({
    model: EMBED_MODEL, input: "first text", encoding_format: "base64",
  });
  const bytes = Buffer.from(raw.data[0].embedding, "base64");
  assert.equal(bytes.length, 4 * vector.length);
  for (let i = 0; i < vector.length; i++) {
    assert.ok(Math.abs(bytes.readFloatLE(4 * i) - vector[i]) < 1e-5);
  }

  const error = await expectError(OpenAI.NotFoundError,
                                  () => openai.embeddings.create({ model: "nope", input: "x" }));
  assert.equal(error.status, 404);
  await expectError(OpenAI.BadRequestError,
                    () => openai.embeddings.create({ model: EMBED_MODEL, input: "" }));
});

apiTest("response_format json_schema: the content matches the schema", async () => {
  const schema = {
    type: "object",
    properties: { answer: { enum: ["yes", "no"] }, score: { type: "integer" } },
    required: ["answer", "score"],
    additionalProperties: false,
  };
  const ask = (fields) => openai.chat.completions.create({
    model: CHAT_MODEL, messages: [{ role: "user", content: "Answer in JSON" }],
    response_format: { type: "json_schema", json_schema: { name: "verdict", schema } }, ...fields,
  });
  const check = (completion) => {
    const [choice] = completion.choices;
    const content = choice.message.content;
    if (choice.finish_reason === "stop") {
      const value = JSON.parse(content);
      assert.deepEqual(Object.keys(value).sort(), ["answer", "score"], content);
      assert.ok(["yes", "no"].includes(value.answer), content);
      assert.ok(Number.isInteger(value.score), content);
      return true;
    }
    // Cut by max_tokens (whitespace and integers may go on): still a valid prefix.
    assert.equal(choice.finish_reason, "length");
    assert.ok(content.replace(/\s+/g, "").startsWith('{"answer"'), JSON.stringify(content));
    return false;
  };
  // Greedy, as in the Python test: this random model tends to pad with
  // whitespace until max_tokens, so only the prefix can be checked then.
  check(await ask({ temperature: 0, max_tokens: 60 }));
  // Seeded sampling finishes the object: at least one of these must parse.
  let parsed = 0;
  for (const seed of [1, 2, 3]) {
    if (check(await ask({ temperature: 0.8, seed, max_tokens: 300 }))) parsed += 1;
  }
  assert.ok(parsed > 0, "no sampled json_schema completion finished with finish_reason stop");

  const error = await expectError(OpenAI.BadRequestError, () => openai.chat.completions.create({
    model: CHAT_MODEL, messages: [{ role: "user", content: "x" }],
    response_format: { type: "json_schema",
                       json_schema: { name: "x", schema: { type: "object", patternProperties: {} } } },
  }));
  assert.equal(error.type, "invalid_request_error");
  assert.match(error.message, /patternProperties/);
});

apiTest("sampling: seed reproduces, stop cuts, penalties are accepted", async () => {
  const messages = [{ role: "user", content: "hi" }];
  const sample = (fields) => openai.chat.completions.create({
    model: CHAT_MODEL, messages, max_tokens: 20, ...fields,
  });
  const first = await sample({ temperature: 0.9, top_p: 0.9, seed: 42 });
  const second = await sample({ temperature: 0.9, top_p: 0.9, seed: 42 });
  const other = await sample({ temperature: 0.9, top_p: 0.9, seed: 43 });
  assert.equal(second.choices[0].message.content, first.choices[0].message.content);
  assert.notEqual(other.choices[0].message.content, first.choices[0].message.content);

  const greedy = (await sample({ temperature: 0 })).choices[0].message.content;
  assert.ok(greedy.length >= 6, JSON.stringify(greedy));
  const middle = Math.floor(greedy.length / 2);
  const stop = greedy.slice(middle, middle + 2);
  const cut = await sample({ temperature: 0, stop: [stop, "never-seen-stop"] });
  assert.equal(cut.choices[0].finish_reason, "stop");
  assert.equal(cut.choices[0].message.content, greedy.slice(0, greedy.indexOf(stop)));

  const penalized = await sample({ temperature: 0, presence_penalty: 1.5, frequency_penalty: 1.5 });
  assertUsage(penalized.usage, 20);
  await expectError(OpenAI.BadRequestError, () => sample({ presence_penalty: 5 }));
});

apiTest("errors surface as the client's typed errors", async () => {
  const user = [{ role: "user", content: "x" }];
  const notFound = await expectError(OpenAI.NotFoundError, () => openai.chat.completions.create({
    model: "gpt-4o", messages: user,
  }));
  assert.equal(notFound.status, 404);
  assert.equal(notFound.code, "model_not_found");
  assert.equal(notFound.param, "model");

  const cases = [
    [{ temperature: "hot" }, "temperature"],
    [{ n: 2 }, "n"],
    [{ max_tokens: 0 }, "max_tokens"],
    [{ stop: [1] }, "stop"],
    [{ top_logprobs: 3 }, "top_logprobs"],
    [{ response_format: { type: "xml" } }, "response_format.type"],
    [{ messages: [] }, "messages"],
    [{ messages: [{ role: "wizard", content: "x" }] }, "messages[0].role"],
  ];
  for (const [fields, param] of cases) {
    const error = await expectError(OpenAI.BadRequestError, () => openai.chat.completions.create({
      model: CHAT_MODEL, messages: user, ...fields,
    }));
    assert.equal(error.status, 400, JSON.stringify(fields));
    assert.equal(error.type, "invalid_request_error", JSON.stringify(fields));
    assert.equal(error.param, param, JSON.stringify(fields));
    assert.ok(error.error.message, JSON.stringify(error.error));
    assert.deepEqual(Object.keys(error.error).sort(), ["code", "message", "param", "type"]);
    assert.ok(error instanceof OpenAI.APIError);
  }

  const prompt = await expectError(OpenAI.BadRequestError,
                                   () => openai.completions.create({ model: CHAT_MODEL, prompt: 5 }));
  assert.equal(prompt.param, "prompt");
  const tooLong = await expectError(OpenAI.BadRequestError, () => openai.completions.create({
    model: CHAT_MODEL, prompt: "word ".repeat(5000), max_tokens: 1,
  }));
  assert.equal(tooLong.code, "context_length_exceeded");
});

apiTest("a full queue answers 429, surfaced as RateLimitError", async () => {
  const server = await startServer("queue", "--parallel", "1", "--max-queue", "1");
  const client = server.client();
  const ask = (i) => client.chat.completions.create({
    model: CHAT_MODEL, messages: [{ role: "user", content: `go ${i}` }], max_tokens: 1000,
    temperature: 0,
  });
  // One slot and one queue place: of several requests sent at once, some must
  // be turned away. A few rounds at most, in case the machine is so slow that
  // the requests arrive one by one (no timing is asserted).
  const rejected = [];
  const fulfilled = [];
  for (let round = 0; round < 5 && rejected.length === 0; round++) {
    const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => ask(i)));
    for (const result of results) {
      if (result.status === "fulfilled") {
        fulfilled.push(result.value);
      } else {
        assert.ok(result.reason instanceof OpenAI.RateLimitError,
                  `expected RateLimitError, got ${result.reason?.constructor?.name}: ${result.reason?.message}`);
        rejected.push(result.reason);
      }
    }
  }
  assert.ok(rejected.length > 0, "no request was rejected");
  assert.ok(fulfilled.length > 0, "no request was served");
  for (const error of rejected) {
    assert.equal(error.status, 429);
    assert.equal(error.type, "rate_limit_error");
    assert.equal(error.headers.get("retry-after"), "1");
  }
  for (const completion of fulfilled) assertUsage(completion.usage, 1000);
  const metrics = await server.metrics();
  const count = metric(metrics, 'xnai_llm_rejections_total{reason="queue_full"}');
  assert.equal(count, rejected.length, metrics);
  // Still serving after the flood.
  const after = await client.chat.completions.create({
    model: CHAT_MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 2,
  });
  assert.equal(after.choices.length, 1);
});

apiTest("aborting a stream mid-way cancels it and leaves the server healthy", async () => {
  const stream = await openai.chat.completions.create({
    model: CHAT_MODEL, messages: [{ role: "user", content: "talk forever" }], max_tokens: 3000,
    temperature: 0, stream: true,
  });
  let received = 0;
  let finishReason = null;
  for await (const chunk of stream) {
    received += 1;
    if (chunk.choices[0]?.finish_reason) finishReason = chunk.choices[0].finish_reason;
    if (received === 3) stream.controller.abort();
  }
  assert.ok(received >= 3, `only ${received} chunks before the stream ended`);
  assert.equal(finishReason, null, "the generation ended before the abort");

  const deadline = Date.now() + 20_000;
  let cancelled = null;
  let active = null;
  let metrics = "";
  while (Date.now() < deadline) {
    metrics = await main.metrics();
    cancelled = metric(metrics, 'xnai_llm_requests_total{outcome="cancelled"}');
    active = metric(metrics, "xnai_llm_active_sequences");
    if (cancelled === 1 && active === 0) break;
    await sleep(100);
  }
  assert.equal(cancelled, 1, metrics);
  assert.equal(active, 0, metrics);

  const health = await fetch(`${main.url}/health`);
  assert.equal(health.status, 200);
  const next = await openai.chat.completions.create({
    model: CHAT_MODEL, messages: [{ role: "user", content: "still there?" }], max_tokens: 4,
    temperature: 0,
  });
  assert.equal(next.choices[0].message.role, "assistant");
  assertUsage(next.usage, 4);
});
