"""synth/memories.py: memories found in Amaranth's Verilog, and needed vs allocated bits from
yosys' mapped cell names and its FF-mapping log lines."""

from spikehq.synth.memories import memory_table, verilog_memories

VERILOG = """
module \\top.b0_q (clk);
  reg [21:0] currents [511:0];
  reg [3:0] weights [2047:0];
  reg [9:0] params [31:0];
endmodule
module \\top.rpe_add (clk);
  reg [4:0] sums [1023:0];
endmodule
module \\top.b0_q.neuron0 (clk);
  reg [7:0] inner [3:0];
endmodule
module \\other (clk);
  reg [7:0] ignored [3:0];
endmodule
module top(clk);
endmodule
"""


def test_memories_of_amaranth_verilog_with_paths_and_engines():
    mems = verilog_memories(VERILOG, "top")
    assert [(m["path"], m["engine"], m["depth"], m["width"]) for m in mems] == [
        ("b0_q.currents", "b0_q", 512, 22), ("b0_q.weights", "b0_q", 2048, 4), ("b0_q.params", "b0_q", 32, 10),
        ("rpe_add.sums", "rpe_add", 1024, 5), ("b0_q.neuron0.inner", "b0_q", 4, 8)]


def test_needed_vs_allocated_bits_per_memory_engine_and_total():
    mems = verilog_memories(VERILOG, "top")
    cells = {"DP16KD": ["top/b0_q.currents.0.0", "top/b0_q.weights.0.0"],
             "TRELLIS_DPR16X4": [f"top/rpe_add.sums.{i}.0" for i in range(128)] + ["top/rpe_add.sums_other.0.0"]}
    log = "using FF mapping for memory top.b0_q.params\nmapping memory top.b0_q.weights via $__DP16KD_\n"
    table = memory_table(mems, cells, log, "top")
    rows = {m["path"]: m for m in table["memories"]}
    assert rows["b0_q.currents"]["bram"] == 1 and rows["b0_q.currents"]["allocated_bits"] == 18432
    assert rows["b0_q.currents"]["efficiency"] == round(512 * 22 / 18432, 4)
    assert rows["b0_q.params"]["mapped_to"] == "ff" and rows["b0_q.params"]["allocated_bits"] == 320
    # a cell of another memory whose name starts alike is not counted
    assert rows["rpe_add.sums"]["lutram"] == 128 and rows["rpe_add.sums"]["efficiency"] == round(5120 / 8192, 4)
    assert rows["b0_q.neuron0.inner"]["mapped_to"] == "optimized away or logic"
    engines = {e["engine"]: e for e in table["engines"]}
    assert engines["b0_q"]["bram"] == 2 and engines["b0_q"]["allocated_bits"] == 2 * 18432 + 320
    assert table["total"]["needed_bits"] == 512 * 22 + 2048 * 4 + 320 + 5120 + 32
    assert table["total"]["allocated_bits"] == 2 * 18432 + 320 + 128 * 64


SHARED = """
module \\top.shared_rom0 (clk);
  (* spikehq_needed_bits = 32'd9344 *)
  (* spikehq_owners = "rpe tok0" *)
  reg [15:0] rom [799:0];
endmodule
module \\top.rpe (clk);
  reg [15:0] bank0 [1023:0];
endmodule
module top(clk);
endmodule
"""


def test_shared_rom_is_one_block_ram_for_both_owners_holding_both_banks():
    """A SharedROM's memory (rtl/banks.py): its engine names both owners, needed = the two
    banks' bits (512×16 + 288×4), not its padded 800×16."""
    mems = verilog_memories(SHARED, "top")
    assert [(m["path"], m["engine"], m["needed_bits"]) for m in mems if m.get("shared")] == \
        [("shared_rom0.rom", "rpe+tok0", 512 * 16 + 288 * 4)]
    table = memory_table(mems, {"DP16KD": ["top/shared_rom0.rom.0.0", "top/rpe.bank0.0.0"]}, "", "top")
    engines = {e["engine"]: e for e in table["engines"]}
    assert engines["rpe+tok0"]["bram"] == 1 and engines["rpe+tok0"]["needed_bits"] == 9344
    assert engines["rpe+tok0"]["efficiency"] == round(9344 / 18432, 4)
    assert table["total"]["needed_bits"] == 9344 + 1024 * 16 and table["total"]["bram"] == 2
