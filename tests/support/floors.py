"""Reading a package's own imports from its source, to hold its floors.

Every ``import`` and ``from … import`` counts, wherever it sits: at the top of
a module, in a function, or under ``if TYPE_CHECKING``.  An import of
``pkg.sub.mod`` also runs ``pkg/sub/__init__.py`` first, so it counts as an
import of every package on the way (but the importer's own).
"""

import ast
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    lines: int
    #: module name -> line numbers of the imports of it
    imports: dict[str, list[int]] = field(default_factory=dict)
    #: (line, module, name): a private name taken from another module
    private: list[tuple[int, str, str]] = field(default_factory=list)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def read_package(root: Path) -> dict[str, Module]:
    """Every module of the package at ``root`` (its folder), with its imports."""
    modules: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        name = ".".join(parts)
        text = path.read_text(encoding="utf-8")
        modules[name] = Module(name, path, is_package, len(text.splitlines()))
    for module in modules.values():
        _read_imports(module, modules)
    return modules


def _absolute(module: Module, level: int, name: str | None) -> str:
    base = module.name.split(".")
    if not module.is_package:
        base.pop()
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([name] if name else [])])


def _read_imports(module: Module, modules: dict[str, Module]) -> None:
    tree = ast.parse(module.path.read_text(encoding="utf-8"))
    root = module.name.split(".")[0]
    aliases: dict[str, str] = {}  # a name bound to one of the package's modules

    def found(target: str, line: int) -> None:
        parts = target.split(".")
        for end in range(1, len(parts) + 1):
            name = ".".join(parts[:end])
            own_ancestor = module.name == name or module.name.startswith(name + ".")
            if name in modules and not own_ancestor:
                module.imports.setdefault(name, []).append(line)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == root:
                    found(alias.name, node.lineno)
                    if alias.asname:
                        aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(module, node.level, node.module) if node.level else node.module or ""
            if target.split(".")[0] != root:
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in modules:
                    found(submodule, node.lineno)
                    aliases[alias.asname or alias.name] = submodule
                    continue
                found(target, node.lineno)
                if _is_private(alias.name) and target != module.name:
                    module.private.append((node.lineno, target, alias.name))
    for node in ast.walk(tree):
        # module._name, where module is one of the package's modules imported here
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and _is_private(node.attr)
            and aliases[node.value.id] != module.name
        ):
            module.private.append((node.lineno, aliases[node.value.id], node.attr))


def cycles(modules: dict[str, Module]) -> list[list[str]]:
    """The groups of modules that import one another, each sorted (Tarjan's)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(name: str) -> None:
        # iterative: a deep package must not hit the recursion limit
        work = [(name, iter(sorted(modules[name].imports)))]
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        while work:
            current, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(modules[child].imports))))
                elif child in on_stack:
                    low[current] = min(low[current], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[current])
            if low[current] == index[current]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == current:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))

    for name in sorted(modules):
        if name not in index:
            visit(name)
    return sorted(groups)


def cycle_edges(modules: dict[str, Module], group: list[str]) -> list[str]:
    """The imports inside one group of :func:`cycles`, as ``a -> b (l.N)`` lines."""
    members = set(group)
    return [
        f"{name} -> {target} (l.{modules[name].imports[target][0]})"
        for name in group
        for target in sorted(modules[name].imports)
        if target in members
    ]
