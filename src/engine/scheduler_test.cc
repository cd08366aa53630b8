// engine::Scheduler on a tiny random qwen3 written by the synthesizer: batched
// greedy decoding gives exactly the tokens of decoding alone, prompts are
// chunked, stop strings and limits end generation, cancellation and the KV
// budget (preemption) keep every answer intact, and bad requests are refused
// with reasons.
#include "engine/scheduler.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "engine/synth.h"
#include "gguf/gguf_reader.h"

namespace xnai::engine {
namespace {

using namespace std::chrono_literals;
using Code = Status::Code;

// A tiny-qwen3 model file, written once per test binary.
const std::filesystem::path& TinyModelPath() {
  static const std::filesystem::path path = [] {
    std::filesystem::path file = std::filesystem::temp_directory_path() /
                                 ("xnai-scheduler-test-" + std::to_string(getpid()) + ".gguf");
    SynthOptions options;
    options.shape = *FindSynthPreset("tiny-qwen3");
    options.type = SynthType::kQ8_0;
    options.seed = 7;
    auto written = WriteSynthModel(options, file);
    EXPECT_TRUE(written.has_value()) << written.error().ToString();
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove(std::filesystem::temp_directory_path() /
                                  ("xnai-scheduler-test-" + std::to_string(getpid()) + ".gguf"),
                              ignored);
    });
    return file;
  }();
  return path;
}

struct Loaded {
  std::unique_ptr<gguf::GgufFile> file;
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
};

Loaded Load(int64_t page_positions = 16) {
  Loaded loaded;
  auto file = gguf::OpenGguf(TinyModelPath());
  EXPECT_TRUE(file.has_value()) << file.error().ToString();
  loaded.file = std::move(*file);
  ModelOptions options;
  options.kv_page_positions = page_positions;
  options.n_threads = 2;
  auto model = Model::Load(*loaded.file, options);
  EXPECT_TRUE(model.has_value()) << model.error().ToString();
  loaded.model = std::move(*model);
  auto tokenizer = Tokenizer::FromGguf(*loaded.file);
  EXPECT_TRUE(tokenizer.has_value()) << tokenizer.error().ToString();
  loaded.tokenizer = std::move(*tokenizer);
  return loaded;
}

// Collects one request's events; Wait() blocks until the last one.
struct Collector {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<GenerationEvent> tokens;
  std::string text;
  std::optional<GenerationEvent> done;
  bool finished = false;

  std::function<void(GenerationEvent&&)> Callback() {
    return [this](GenerationEvent&& event) {
      std::lock_guard<std::mutex> lock(mutex);
      EXPECT_FALSE(finished) << "an event after the last one";
      text += event.text;
      if (event.kind == GenerationEvent::Kind::kToken) {
        tokens.push_back(std::move(event));
      } else {
        done = std::move(event);
        finished = true;
        cv.notify_all();
      }
    };
  }
  bool Wait(std::chrono::seconds timeout = 60s) {
    std::unique_lock<std::mutex> lock(mutex);
    return cv.wait_for(lock, timeout, [this] { return finished; });
  }
  std::vector<int32_t> Ids() {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<int32_t> ids;
    for (const auto& event : tokens) ids.push_back(event.chosen.token);
    return ids;
  }
};

GenerationRequest Greedy(std::vector<int32_t> prompt, int64_t max_tokens, Collector& collector) {
  GenerationRequest request;
  request.prompt = std::move(prompt);
  request.sampling.temperature = 0;
  request.max_tokens = max_tokens;
  request.top_logprobs = 0;  // so events carry the chosen token id
  request.on_event = collector.Callback();
  return request;
}

std::vector<int32_t> Prompt(int n, int seed) {
  std::vector<int32_t> out;
  uint32_t state = static_cast<uint32_t>(seed) * 2654435761u + 1;
  for (int i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    out.push_back(static_cast<int32_t>(300 + (state >> 8) % 3500));  // ordinary tokens
  }
  return out;
}

// Greedy decoding with Model::Forward directly: what the scheduler must match.
std::vector<int32_t> DecodeAlone(const Model& model, const Tokenizer& tokenizer,
                                 const std::vector<int32_t>& prompt, int64_t max_tokens) {
  Sequence sequence = model.NewSequence();
  std::vector<int32_t> out;
  auto logits = model.Forward(sequence, prompt, false);
  for (int64_t step = 0; step < max_tokens && logits; ++step) {
    const int32_t token =
        static_cast<int32_t>(std::max_element(logits->begin(), logits->end()) - logits->begin());
    if (token == tokenizer.eos_id() || tokenizer.IsControl(token)) break;
    out.push_back(token);
    logits = model.Forward(sequence, std::span(&token, 1), false);
  }
  return out;
}

TEST(Scheduler, OneRequestMatchesPlainGreedyDecoding) {
  Loaded loaded = Load();
  Scheduler scheduler(*loaded.model, *loaded.tokenizer, {}, nullptr);
  Collector collector;
  const std::vector<int32_t> prompt = Prompt(40, 1);
  auto id = scheduler.Submit(Greedy(prompt, 24, collector));
  ASSERT_TRUE(id.has_value()) << id.error().ToString();
  ASSERT_TRUE(collector.Wait());
  const std::vector<int32_t> want = DecodeAlone(*loaded.model, *loaded.tokenizer, prompt, 24);
  EXPECT_EQ(collector.Ids(), want);
  EXPECT_EQ(collector.text, loaded.tokenizer->Decode(want));
  ASSERT_TRUE(collector.done.has_value());
  EXPECT_EQ(collector.done->finish_reason, want.size() == 24 ? "length" : "stop");
  EXPECT_EQ(collector.done->prompt_tokens, 40);
  EXPECT_EQ(collector.done->completion_tokens, static_cast<int64_t>(want.size()));
}

// The requirement: batching does not change results.
TEST(Scheduler, SixteenConcurrentRequestsEqualOneAtATime) {
  Loaded loaded = Load();
  SchedulerOptions options;
  options.max_parallel = 16;
  options.max_batch_tokens = 64;  // prompts get chunked
  Scheduler scheduler(*loaded.model, *loaded.tokenizer, options, nullptr);
  std::vector<std::unique_ptr<Collector>> collectors;
  std::vector<std::vector<int32_t>> prompts;
  for (int idx = 0; idx < 16; ++idx) {
    prompts.push_back(Prompt(10 + idx * 7, 100 + idx));
    collectors.push_back(std::make_unique<Collector>());
    ASSERT_TRUE(scheduler.Submit(Greedy(prompts.back(), 20, *collectors.back())));
  }
  for (int idx = 0; idx < 16; ++idx) {
    ASSERT_TRUE(collectors[idx]->Wait());
    EXPECT_EQ(collectors[idx]->Ids(),
              DecodeAlone(*loaded.model, *loaded.tokenizer, prompts[idx], 20))
        << "request " << idx;
  }
  EXPECT_EQ(scheduler.stats().finished, 16);
}

TEST(Scheduler, StopStringEndsTheOutputBeforeIt) {
  Loaded loaded = Load();
  Scheduler scheduler(*loaded.model, *loaded.tokenizer, {}, nullptr);
  const std::vector<int32_t> prompt = Prompt(12, 3);
  Collector full;
  ASSERT_TRUE(scheduler.Submit(Greedy(prompt, 30, full)));
  ASSERT_TRUE(full.Wait());
  ASSERT_GT(full.text.size(), 8u);
  // A stop string taken from the middle of the output.
  const size_t cut = full.text.size() / 2;
  const std::string stop = full.text.substr(cut, 3);
  const size_t first = full.text.find(stop);
  Collector stopped;
  GenerationRequest request = Greedy(prompt, 30, stopped);
  request.stop = {"\x01never", stop};
  ASSERT_TRUE(scheduler.Submit(std::move(request)));
  ASSERT_TRUE(stopped.Wait());
  EXPECT_EQ(stopped.text, full.text.substr(0, first));
  EXPECT_EQ(stopped.done->finish_reason, "stop");
}

TEST(Scheduler, CancelFreesTheSequence) {
  Loaded loaded = Load();
  Scheduler scheduler(*loaded.model, *loaded.tokenizer, {}, nullptr);
  Collector collector;
  auto id = scheduler.Submit(Greedy(Prompt(20, 4), -1, collector));  // to the end of the context
  ASSERT_TRUE(id.has_value());
  for (int tries = 0; tries < 2000 && collector.Ids().empty(); ++tries) {
    std::this_thread::sleep_for(1ms);
  }
  scheduler.Cancel(*id);
  for (int tries = 0; tries < 2000 && scheduler.stats().active > 0; ++tries) {
    std::this_thread::sleep_for(1ms);
  }
  const Scheduler::Stats stats = scheduler.stats();
  EXPECT_EQ(stats.active, 0);
  EXPECT_EQ(stats.cancelled, 1);
  EXPECT_FALSE(collector.finished);
  // Only published (full) pages stay, in the prefix cache, all evictable.
  EXPECT_EQ(loaded.model->kv_pool().pages_in_use(), loaded.model->kv_pool().pages_cached_idle());
  scheduler.Cancel(*id);  // again: ignored
  scheduler.Cancel(12345);
}

TEST(Scheduler, FullQueueAndBadRequestsAreRefused) {
  Loaded loaded = Load();
  SchedulerOptions options;
  options.max_parallel = 1;
  options.max_queue = 1;
  obs::Registry metrics;
  Scheduler scheduler(*loaded.model, *loaded.tokenizer, options, &metrics);
  Collector a, b, c;
  ASSERT_TRUE(scheduler.Submit(Greedy(Prompt(8, 1), -1, a)));
  // Wait until a runs, so b is the one queued.
  for (int tries = 0; tries < 2000 && scheduler.stats().active == 0; ++tries) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(scheduler.Submit(Greedy(Prompt(8, 2), 4, b)));
  auto refused = scheduler.Submit(Greedy(Prompt(8, 3), 4, c));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kResourceExhausted);
  EXPECT_NE(refused.error().message().find("too many requests"), std::string::npos);
  EXPECT_EQ(metrics.Value("xnai_llm_rejections_total", {{"reason", "queue_full"}}), 1);

  Collector d;
  EXPECT_EQ(scheduler.Submit(Greedy({}, 4, d)).error().code(), Code::kInvalidArgument);
  auto too_long = scheduler.Submit(Greedy(Prompt(4096, 1), 4, d));
  ASSERT_FALSE(too_long);
  EXPECT_NE(too_long.error().message().find("context of 4096"), std::string::npos);
  auto bad_id = scheduler.Submit(Greedy({1, 999999}, 4, d));
  EXPECT_EQ(bad_id.error().code(), Code::kInvalidArgument);
  GenerationRequest many_logprobs = Greedy(Prompt(4, 1), 4, d);
  many_logprobs.top_logprobs = 21;
  EXPECT_FALSE(scheduler.Submit(std::move(many_logprobs)));
  GenerationRequest no_callback = Greedy(Prompt(4, 1), 4, d);
  no_callback.on_event = nullptr;
  EXPECT_FALSE(scheduler.Submit(std::move(no_callback)));

  scheduler.Drain();
  auto draining = scheduler.Submit(Greedy(Prompt(8, 3), 4, c));
  ASSERT_FALSE(draining);
  EXPECT_EQ(draining.error().code(), Code::kUnavailable);
  EXPECT_TRUE(b.Wait());  // queued work still finishes
  EXPECT_EQ(b.done->finish_reason, "length");
}

// A KV budget too small for every sequence at once: some are preempted and
// recomputed, and every output is still exactly the greedy one.
TEST(Scheduler, TightKvBudgetPreemptsWithoutChangingOutputs) {
  Loaded loaded = Load(/*page_positions=*/16);
  std::vector<std::vector<int32_t>> prompts, wants;
  for (int idx = 0; idx < 4; ++idx) {
    prompts.push_back(Prompt(30, 200 + idx));
    wants.push_back(DecodeAlone(*loaded.model, *loaded.tokenizer, prompts.back(), 40));
  }
  loaded.model->kv_pool().ClearCache();
  loaded.model->kv_pool().SetMaxPages(8);  // 128 positions for all sequences together
  SchedulerOptions options;
  options.max_parallel = 4;
  Scheduler scheduler(*loaded.model, *loaded.tokenizer, options, nullptr);
  std::vector<std::unique_ptr<Collector>> collectors;
  for (int idx = 0; idx < 4; ++idx) {
    collectors.push_back(std::make_unique<Collector>());
    ASSERT_TRUE(scheduler.Submit(Greedy(prompts[idx], 40, *collectors.back())));
  }
  for (int idx = 0; idx < 4; ++idx) {
    ASSERT_TRUE(collectors[idx]->Wait());
    const std::vector<int32_t> got = collectors[idx]->Ids();
    const std::vector<int32_t>& want = wants[idx];
    size_t first_diff = 0;
    while (first_diff < std::min(got.size(), want.size()) && got[first_diff] == want[first_diff]) {
      ++first_diff;
    }
    EXPECT_EQ(got, want) << "request " << idx << ": " << got.size() << " vs " << want.size()
                         << " tokens, first difference at " << first_diff;
  }
  EXPECT_LE(loaded.model->kv_pool().pages_in_use(), 8);
  EXPECT_GT(scheduler.stats().preemptions, 0);  // the budget did bind

  // A prompt that could never fit is refused up front, with the reason.
  Collector huge;
  auto refused = scheduler.Submit(Greedy(Prompt(200, 9), 4, huge));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kInvalidArgument);
  EXPECT_NE(refused.error().message().find("memory budget"), std::string::npos)
      << refused.error().message();
}

TEST(Scheduler, SharedPrefixIsTakenFromTheCache) {
  Loaded loaded = Load(/*page_positions=*/16);
  Scheduler scheduler(*loaded.model, *loaded.tokenizer, {}, nullptr);
  std::vector<int32_t> system = Prompt(100, 5);
  std::vector<int32_t> first = system, second = system;
  for (int32_t token : Prompt(10, 6)) first.push_back(token);
  for (int32_t token : Prompt(10, 7)) second.push_back(token);
  Collector a, b;
  ASSERT_TRUE(scheduler.Submit(Greedy(first, 4, a)));
  ASSERT_TRUE(a.Wait());
  EXPECT_EQ(a.done->cached_tokens, 0);
  ASSERT_TRUE(scheduler.Submit(Greedy(second, 4, b)));
  ASSERT_TRUE(b.Wait());
  EXPECT_EQ(b.done->cached_tokens, 96);  // 6 full pages of the shared 100 tokens
  EXPECT_EQ(b.Ids(), DecodeAlone(*loaded.model, *loaded.tokenizer, second, 4));
  EXPECT_EQ(scheduler.stats().cached_tokens, 96);
}

TEST(Scheduler, LogprobsDescribeTheModelsDistribution) {
  Loaded loaded = Load();
  Scheduler scheduler(*loaded.model, *loaded.tokenizer, {}, nullptr);
  Collector collector;
  GenerationRequest request = Greedy(Prompt(10, 8), 5, collector);
  request.top_logprobs = 3;
  ASSERT_TRUE(scheduler.Submit(std::move(request)));
  ASSERT_TRUE(collector.Wait());
  ASSERT_FALSE(collector.tokens.empty());
  for (const GenerationEvent& event : collector.tokens) {
    ASSERT_EQ(event.top.size(), 3u);
    EXPECT_EQ(event.top[0].token, event.chosen.token);  // greedy takes the top one
    EXPECT_FLOAT_EQ(event.top[0].logprob, event.chosen.logprob);
    EXPECT_LE(event.chosen.logprob, 0);
    EXPECT_GE(event.top[0].logprob, event.top[1].logprob);
    EXPECT_GE(event.top[1].logprob, event.top[2].logprob);
    EXPECT_EQ(event.chosen.bytes, loaded.tokenizer->TokenPiece(event.chosen.token));
  }
}

}  // namespace
}  // namespace xnai::engine
