"""The package's layers run one way, read from the source (tests/import_graph.py; `python tests/import_graph.py`
prints the graph): no import cycle, no library module importing a command line, every import at or below the
importer's layer, and no package import hidden inside a function."""
import import_graph


def test_the_package_has_no_import_cycle():
    assert import_graph.find_cycle(import_graph.graph()) == []


def test_no_library_module_imports_a_command_line():
    edges = import_graph.graph()
    library = [m for m in edges if m not in import_graph.CLI_MODULES]
    assert library and [(m, t) for m in library for t in edges[m] if t in import_graph.CLI_MODULES] == []


def test_every_import_stays_at_or_below_its_layer():
    edges = import_graph.graph()
    upward = [(m, t) for m, targets in edges.items() for t in targets if import_graph.layer(t) > import_graph.layer(m)]
    assert upward == []


def test_no_package_import_is_placed_inside_a_function():
    names = import_graph.module_names()
    hidden = {m: found for m, path in names.items() if (found := import_graph.function_level_imports(m, path, names))}
    assert hidden == {}


def test_the_checks_see_a_cycle_and_an_upward_edge():
    """The walk itself: a made-up cycle is found, and the layers rank a command line above the library."""
    assert import_graph.find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert import_graph.layer('predict') > import_graph.layer('hub.export') > import_graph.layer('inference') > \
        import_graph.layer('data.builders') > import_graph.layer('models.csba_squeeze')
