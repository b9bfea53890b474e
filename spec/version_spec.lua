-- One version everywhere: quench._VERSION, the release rockspec, CMake's
-- project version, the README and the CHANGELOG.
local quench = require "quench"

local function slurp(path)
  local f = assert(io.open(path), "cannot open " .. path)
  local s = f:read("a")
  f:close()
  return s
end

-- A rockspec's variables (rockspecs are Lua assignments).
local function rockspec(path)
  local env = {}
  assert(loadfile(path, "t", env))()
  return env
end

describe("version", function()
  local v = quench._VERSION

  it("quench._VERSION is a semantic version", function()
    assert.matches("^%d+%.%d+%.%d+$", v)
  end)

  it("has a release rockspec that builds like the scm one", function()
    local release = rockspec("rocks/quench-" .. v .. "-1.rockspec")
    local scm = rockspec("rocks/quench-scm-1.rockspec")
    assert.are.equal(v .. "-1", release.version)
    assert.are.equal("scm-1", scm.version)
    assert.are.equal(scm.package, release.package)
    assert.are.same(scm.build, release.build)
    assert.are.same(scm.dependencies, release.dependencies)
    assert.are.same(scm.external_dependencies, release.external_dependencies)
    assert.are.same(scm.description, release.description)
  end)

  it("agrees with CMakeLists.txt, README.md and CHANGELOG.md", function()
    assert.is_truthy(slurp("CMakeLists.txt"):find("project(quench VERSION " .. v .. " ", 1, true),
      "CMakeLists.txt: project(quench VERSION " .. v .. " ...) expected")
    assert.is_truthy(slurp("README.md"):find("quench " .. v, 1, true),
      "README.md should name the version: quench " .. v)
    local released = slurp("CHANGELOG.md"):match("\n## %[(%d+%.%d+%.%d+)%]")
    assert.are.equal(v, released, "the latest release in CHANGELOG.md")
  end)
end)
