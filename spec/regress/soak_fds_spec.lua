-- The server idioms docs/io.md teaches (a task per connection, a timeout
-- per request, <close> on the stream) must hold a constant descriptor count
-- against clients that pipeline, vanish mid-request, reset, and stop
-- reading. Before streams' lingering close was bounded, every client that
-- stopped reading left the server one descriptor for as long as the process
-- lived. bench/soak_fds.lua is the soak; here it runs small.
local soak = dofile("bench/soak_fds.lua")

describe("the descriptor soak (bench/soak_fds.lua), small", function()
  it("returns the server's descriptors to the baseline after every round", function()
    local r = soak.run({ rounds = 3, clients = 16 })
    assert.is_true(r.ok, r.why)
    assert.are.equal(3, r.rounds)
    assert.are.equal(48, r.connections)
    assert.are.equal(0, r.fds_left)
    assert.is_true(r.fds_max > r.fds_base)          -- the clients did hold descriptors
  end)
end)
