"""Where the compiled extension uses instructions beyond baseline x86-64, and how the code that
does is reached: the check that a wheel runs on any x86-64 CPU.

Reads the extension with binutils (``objdump -d``, ``readelf``) and its symbol table. Each
instruction is classed by its encoding: EVEX (prefix 0x62, AVX-512), VEX (0xC4 / 0xC5: AVX, AVX2,
FMA) or a legacy SSE3..SSE4.2 instruction (above the x86-64 baseline of SSE2). The rules:

- EVEX only in functions of kernels/avx512.c; VEX only in those of kernels/avx2.c and
  kernels/avx512.c; nothing above SSE2 anywhere else (so nothing was built with -march=native);
- a kernel file's functions are reached only from the same file, or through its tables
  (``fm_kernels_<isa>``, ``fm_pairs_<isa>``: function pointers) and its own data;
- those tables are read only by kernels/registry.c, which holds the CPUID / XGETBV probe.

Usage: ``python tests/isa_audit.py [the extension's .so, or a wheel]`` (default: the installed
``fastmlp._core``); prints what it found and exits 1 on a violation.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field

# The kernel files, and the instruction classes each may use.
ISA_FILES = {"avx2.c": {"vex", "above_sse2"}, "avx512.c": {"vex", "evex", "above_sse2"},
             "avx512_bf16.c": {"vex", "evex", "above_sse2"}}
# A kernel file's tables: fm_kernels_<isa> (the float set), fm_pairs_<isa> (its bf16 products).
TABLE_PREFIXES = ("fm_kernels_", "fm_pairs_")
TABLES = {prefix + f[:-2]: f for f in ISA_FILES for prefix in TABLE_PREFIXES}
REGISTRY_FILE = "registry.c"
# registry.h's functions: the only global functions that may read a kernel set's table.
REGISTRY_API = {"fm_dispatch_init", "fm_kernels", "fm_pairs", "fm_bf16_name", "fm_bf16_native",
                "fm_bf16_set_emulated", "fm_isa_name", "fm_isa_set", "fm_isa_known",
                "fm_isa_available", "fm_isa_note", "fm_compiler"}

LEGACY_PREFIXES = {0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0xF0, 0xF2, 0xF3}
# SSE3, SSSE3, SSE4.1, SSE4.2 and friends, legacy-encoded (their VEX forms are "vex").
ABOVE_SSE2 = re.compile(
    r"(haddp|hsubp|addsubp|lddqu|movddup|movs[hl]dup|pshufb|palignr|phadd|phsub|pabs[bwd]|"
    r"psign|pmaddubsw|pmulhrsw|ptest|p?blend|roundp|rounds|dpp[sd]|insertps|extractps|pmulld|"
    r"pmuldq|pm(in|ax)(s[bd]|u[wd])|pcmp[ei]str|pcmp(eq|gt)q|packusdw|pmov[sz]x|pextr[bdq]|"
    r"pinsr[bdq]|movntdqa|mpsadbw|phminposuw|popcnt|crc32|movbe|lzcnt)")


@dataclass
class Function:
    name: str
    address: int
    size: int
    file: str = None          # the source file, known for local symbols
    classes: dict = field(default_factory=dict)   # instruction class -> count

    def owner(self):
        return self.file if self.file is not None else "global"

    def label(self):
        return f"{self.name} ({self.file or 'global symbol'})"


def _run(*command):
    tool = shutil.which(command[0])
    if tool is None:
        raise FileNotFoundError(f"{command[0]} not found (install binutils)")
    return subprocess.run([tool, *command[1:]], check=True, capture_output=True,
                          text=True).stdout


def symbols(path):
    """The .symtab's functions (by address) and objects: local symbols carry the source file
    named by the FILE symbol before them."""
    functions, objects = {}, []
    current, in_symtab = None, False
    for line in _run("readelf", "-sW", path).splitlines():
        if line.startswith("Symbol table"):
            in_symtab = "'.symtab'" in line
            continue
        parts = line.split()
        if not in_symtab or len(parts) < 8 or not parts[0][:-1].isdigit():
            continue
        value, size, kind, bind, name = parts[1], parts[2], parts[3], parts[4], parts[7]
        if kind == "FILE":
            current = name
            continue
        size = int(size, 16) if size.startswith("0x") else int(size)
        file = current if bind == "LOCAL" else None
        if kind == "FUNC" and size > 0:
            functions[int(value, 16)] = Function(name.split("@")[0], int(value, 16), size, file)
        elif kind == "OBJECT":
            objects.append((int(value, 16), size, name.split("@")[0], file))
    if not functions:
        raise ValueError(f"{path} has no symbol table (stripped?): cannot attribute its code")
    return functions, objects


_HEADER = re.compile(r"^([0-9a-f]+) <(.+)>:$")
_INSN = re.compile(r"^\s*([0-9a-f]+):\t([0-9a-f ]+?)\s*\t(.*)$")
_TARGET = re.compile(r"^(?:call|jmp|j[a-z]+)\s+([0-9a-f]+) <")
_RIP_COMMENT = re.compile(r"\(%rip\).*#\s*([0-9a-f]+)")


def classify(code):
    """'evex', 'vex', 'above_sse2' or None (baseline x86-64) for one instruction's bytes."""
    i = 0
    while i < len(code) and code[i] in LEGACY_PREFIXES:
        i += 1
    if i < len(code) and 0x40 <= code[i] <= 0x4F:   # REX
        i += 1
    if i >= len(code):
        return None
    if code[i] == 0x62:       # BOUND is invalid in 64-bit mode: always EVEX
        return "evex"
    if code[i] in (0xC4, 0xC5):   # LES / LDS likewise: always VEX
        return "vex"
    return None


@dataclass
class Audit:
    functions: dict
    violations: list = field(default_factory=list)
    table_reads: int = 0      # the registry's reads of the kernel tables
    table_pointers: int = 0   # pointers into the kernel files stored in their tables
    probes: list = field(default_factory=list)   # functions that execute CPUID
    outside: dict = field(default_factory=dict)   # instructions in no function symbol, by class

    def summary(self):
        """{owner file or 'global': {class: count}} over every function."""
        out = {}
        for f in self.functions.values():
            for cls, n in f.classes.items():
                out.setdefault(f.owner(), {}).setdefault(cls, 0)
                out[f.owner()][cls] += n
        return out


def audit(path):
    """Reads the extension at `path` and checks the rules of the module docstring."""
    functions, objects = symbols(path)
    starts = sorted(functions)
    result = Audit(functions)
    isa_ranges = [(f.address, f.address + f.size, f.file) for f in functions.values()
                  if f.file in ISA_FILES]

    def isa_file_at(address):
        for lo, hi, file in isa_ranges:
            if lo <= address < hi:
                return file
        return None

    def function_at(address):
        import bisect
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0:
            f = functions[starts[i]]
            if address < f.address + f.size:
                return f
        return None

    references = []   # (from function, to address, text)
    probes = []       # (function, "cpuid" or "xgetbv")
    current = None
    for line in _run("objdump", "-d", "--insn-width=15", path).splitlines():
        m = _HEADER.match(line)
        if m:
            current = functions.get(int(m.group(1), 16))
            continue
        m = _INSN.match(line)
        if not m:
            continue
        address, code, text = int(m.group(1), 16), bytes.fromhex(m.group(2)), m.group(3)
        owner = current if current is not None and address < current.address + current.size \
            else function_at(address)
        mnemonic = text.split()[0] if text.split() else ""
        if mnemonic in ("cpuid", "xgetbv"):
            probes.append((owner, mnemonic))
        cls = classify(code)
        if cls is None and ABOVE_SSE2.fullmatch(mnemonic):
            cls = "above_sse2"
        if cls is not None:
            if owner is None:
                result.outside[cls] = result.outside.get(cls, 0) + 1
            else:
                owner.classes[cls] = owner.classes.get(cls, 0) + 1
        for pattern in (_TARGET, _RIP_COMMENT):
            t = pattern.match(text) if pattern is _TARGET else pattern.search(text)
            if t:
                references.append((owner, int(t.group(1), 16), text))

    # Rule 1: wide instructions only in their kernel file.
    for f in functions.values():
        for cls in f.classes:
            if cls not in ISA_FILES.get(f.file, set()):
                result.violations.append(f"{f.label()}: {f.classes[cls]} {cls} instruction(s)")
    for cls, n in result.outside.items():
        result.violations.append(f"{n} {cls} instruction(s) outside any function symbol")

    # Rule 2: a kernel file's code is entered only from that file or through its table.
    table_of = {name: (addr, size) for addr, size, name, file in objects if name in TABLES}
    registry_objects = [(addr, size) for addr, size, name, file in objects
                        if file == REGISTRY_FILE]
    for source, target, text in references:
        target_file = isa_file_at(target)
        if target_file is not None and (source is None or source.file != target_file):
            where = source.label() if source else "code outside any function"
            result.violations.append(f"{where} refers into {target_file}: {text}")

    table_slots = {}   # address holding a table's address (GOT slot) -> table name
    for line in _run("readelf", "-rW", path).splitlines():
        parts = line.split()
        if len(parts) < 4 or not re.fullmatch(r"[0-9a-f]{8,}", parts[0]):
            continue
        where, kind = int(parts[0], 16), parts[2]
        if kind == "R_X86_64_RELATIVE":
            target_file = isa_file_at(int(parts[3], 16))
            if target_file is None:
                continue
            # Its tables, and the file's own data (a table of its own the tables point to).
            homes = [table_of[n] for n, f in TABLES.items() if f == target_file and n in table_of]
            homes += [(addr, size) for addr, size, name, file in objects if file == target_file]
            if not any(lo <= where < lo + size for lo, size in homes):
                result.violations.append(f"a pointer into {target_file} stored at {where:#x}, "
                                         f"outside that file's tables and data")
            else:
                result.table_pointers += 1
        elif len(parts) >= 5 and parts[4].split("@")[0] in TABLES:
            table = parts[4].split("@")[0]
            if kind == "R_X86_64_GLOB_DAT":
                table_slots[where] = table
            elif not any(lo <= where < lo + size for lo, size in registry_objects):
                result.violations.append(f"{table} stored at {where:#x}, outside {REGISTRY_FILE}")

    # Rule 3: only the registry reads the tables (directly or through their GOT slots).
    table_addresses = {addr: name for name, (addr, size) in table_of.items()}
    for source, target, text in references:
        table = table_slots.get(target) or table_addresses.get(target)
        if table is None:
            continue
        if in_registry(source):
            result.table_reads += 1
            continue
        where = source.label() if source else "code outside any function"
        result.violations.append(f"{where} reads {table}: {text}")

    # The probe: CPUID and XGETBV in the registry's functions, and nowhere else.
    for source, mnemonic in probes:
        if not in_registry(source):
            where = source.label() if source else "code outside any function"
            result.violations.append(f"{where} executes {mnemonic}")
        else:
            result.probes.append(source.name)
    # Each rule above must have seen what it checks, or the reading went wrong.
    for what, seen in (("the registry's reads of the kernel tables", result.table_reads),
                       ("pointers into the kernel files in their tables", result.table_pointers),
                       ("CPUID in the registry", "cpuid" in {m for _, m in probes})):
        if not seen:
            result.violations.append(f"found no {what}: cannot vouch for the dispatch")
    return result


def in_registry(function):
    return function is not None and (function.file == REGISTRY_FILE or
                                     function.file is None and function.name in REGISTRY_API)


def _extension_from(path, tmp):
    if path.endswith(".whl"):
        with zipfile.ZipFile(path) as wheel:
            (member,) = [n for n in wheel.namelist() if re.search(r"fastmlp/_core[^/]*\.so$", n)]
            return wheel.extract(member, tmp)
    return path


def main(argv):
    if len(argv) > 1:
        target = argv[1]
    else:
        from fastmlp import _core
        target = _core.__file__
    with tempfile.TemporaryDirectory() as tmp:
        result = audit(_extension_from(target, tmp))
    for owner, counts in sorted(result.summary().items()):
        print(f"{owner:12s} " + ", ".join(f"{n} {cls}" for cls, n in sorted(counts.items())))
    print(f"kernel tables: {result.table_pointers} function pointers, read by the registry "
          f"{result.table_reads} time(s); CPUID / XGETBV in {', '.join(sorted(set(result.probes)))}")
    for v in result.violations:
        print("VIOLATION:", v)
    print("ok: wide instructions only in the kernel files, reached through the registry"
          if not result.violations else f"{len(result.violations)} violation(s)")
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
