// CPU path selection and the kernel registry.
#include <cstdlib>

#include <gtest/gtest.h>

#include "engine/cpu.h"
#include "engine/kernels.h"

namespace xnai::engine {
namespace {

TEST(CpuPathTest, NamesRoundTrip) {
  for (CpuPath path : {CpuPath::kScalar, CpuPath::kAvx2, CpuPath::kAvx512}) {
    EXPECT_EQ(ParseCpuPath(CpuPathName(path)), path);
  }
  EXPECT_EQ(ParseCpuPath("AVX2"), std::nullopt);
  EXPECT_EQ(ParseCpuPath(""), std::nullopt);
}

TEST(CpuPathTest, SelectHonoursTheEnvironmentValue) {
  EXPECT_EQ(SelectCpuPath(nullptr).value(), DetectCpuPath());
  EXPECT_EQ(SelectCpuPath("").value(), DetectCpuPath());
  EXPECT_EQ(SelectCpuPath("scalar").value(), CpuPath::kScalar);
  Result<CpuPath> bad = SelectCpuPath("sse9");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(bad.error().message().find("XNAI_CPU=sse9"), std::string::npos);
  for (CpuPath path : {CpuPath::kAvx2, CpuPath::kAvx512}) {
    Result<CpuPath> selected = SelectCpuPath(std::string(CpuPathName(path)).c_str());
    if (CpuSupports(path)) {
      EXPECT_EQ(selected.value(), path);
    } else {
      ASSERT_FALSE(selected);
      EXPECT_EQ(selected.error().code(), Status::Code::kUnsupported);
    }
  }
}

TEST(CpuPathTest, DetectedPathIsSupported) {
  EXPECT_TRUE(CpuSupports(CpuPath::kScalar));
  EXPECT_TRUE(CpuSupports(DetectCpuPath()));
  if (CpuSupports(CpuPath::kAvx512)) EXPECT_TRUE(CpuSupports(CpuPath::kAvx2));
}

TEST(KernelRegistryTest, ActivationRowSizes) {
  using kernels::ActFormat;
  EXPECT_EQ(kernels::ActRowBytes(ActFormat::kF32, 64), 256);
  EXPECT_EQ(kernels::ActRowBytes(ActFormat::kQ8, 64), 80);
  EXPECT_EQ(kernels::ActRowBytes(ActFormat::kQ8K, 512), 584);
  EXPECT_EQ(kernels::ActBlockElems(ActFormat::kQ8K), 256);
}

TEST(KernelRegistryTest, UnsupportedTypeHasNoKernels) {
  EXPECT_EQ(kernels::GetKernels(TensorType::kQ2_K, CpuPath::kScalar), nullptr);
}

}  // namespace
}  // namespace xnai::engine
