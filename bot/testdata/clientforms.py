#!/usr/bin/python3
"""Load the bot's ad-hoc answers the way real clients do, and fail loudly.

Usage: clientforms.py DIR

DIR holds one <iq type='result'> per *.xml file, each carrying one
<command xmlns='http://jabber.org/protocol/commands'/> the bot answered
with (TestClientsShowEveryForm in bot/clientforms_test.go writes them).
Each is taken through:

  Gajim 1.7.3 (Debian 12), with python3-nbxmpp 4.2.2: nbxmpp's ad-hoc
  parsing (nbxmpp/modules/adhoc.py: status, notes, actions), then what
  gajim/gtk/adhoc.py does with the form (dataforms.extend_form) and what
  gajim/gtk/dataform.py's FormGrid does with it: _analyse_fields and
  _parse_form walk form_node.iter_fields() and read each field's type_,
  label, media, value, options; the Stage page validates with is_valid().
  When Gajim itself is installed, its own FormGrid._analyse_fields (a
  static method that needs no display) runs too.

  poezio 0.14, with python3-slixmpp 1.8.3: slixmpp's xep_0004 Form built
  from the <x/> (poezio's core/handlers.py next_adhoc_step), notes added
  as nameless fixed fields, then what windows/data_forms.py's FormWin
  reads: getFields(), each field's type, label, desc, value, options.
  poezio shows a field's label (a fixed field's value) in half the
  window, so a line wider than MAX_COLUMNS is cut, and it draws an option
  label in one addstr that shows nothing for some characters (emoji). A
  result's text lines (fixed fields text-N) and option labels that would
  be cut fail; other cut text (parameter labels, questions) is listed.

Any exception, and any of poezio's cut or lost lines, fails the file. The
script exits 1 if a file failed, naming it and the reason.
"""

import glob
import os
import sys
import traceback
import unicodedata
import xml.etree.ElementTree as ET

from nbxmpp.modules import dataforms
from nbxmpp.modules.adhoc import _parse_actions, _parse_notes
from nbxmpp.namespaces import Namespace
from nbxmpp.simplexml import NodeBuilder
from slixmpp.plugins.xep_0004.stanza import FieldOption, Form, FormField
from slixmpp.xmlstream import register_stanza_plugin

try:
    import gi

    gi.require_version('Gtk', '3.0')
    gi.require_version('GtkSource', '4')
    from gajim.gtk.dataform import FormGrid as GajimFormGrid
except Exception:  # Gajim is not needed: the mirror below is what runs in CI
    GajimFormGrid = None

# poezio gives a field's label half of the window; on an 80-column
# terminal that is 40 columns, and the last one is not written.
MAX_COLUMNS = 39

# The field types gajim/gtk/dataform.py's FormGrid has a widget for; any
# other type is a KeyError there.
GAJIM_WIDGETS = {'boolean', 'fixed', 'list-single', 'list-multi', 'jid-single',
                 'jid-multi', 'text-single', 'text-private', 'text-multi'}


def load_slixmpp():
    """What slixmpp's xep_0004 plugin does when poezio loads it
    (XEP_0004.plugin_init): without it a Form has no fields."""
    register_stanza_plugin(FormField, FieldOption, iterable=True)
    register_stanza_plugin(Form, FormField, iterable=True)


def columns(text):
    """How many terminal columns text takes (wide and emoji take two)."""
    n = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        n += 2 if unicodedata.east_asian_width(ch) in ('W', 'F') else 1
    return n


def plain_label(text):
    """Whether poezio can draw text as an option label: narrow characters,
    no symbols such as emoji."""
    for ch in text:
        if unicodedata.east_asian_width(ch) in ('W', 'F'):
            return False
        if unicodedata.category(ch) in ('So', 'Cs', 'Co', 'Cn'):
            return False
    return True


def gajim(iq):
    """What Gajim 1.7.3 does with the answer, through nbxmpp 4.2.2."""
    command = iq.getTag('command', namespace=Namespace.COMMANDS)
    assert command is not None, 'command node missing'
    assert command.getAttr('node') is not None, 'node attribute missing'
    status = command.getAttr('status')
    assert status in ('executing', 'completed', 'canceled'), 'status %r' % status
    notes = _parse_notes(command)
    _parse_actions(command)
    for note in notes:
        str(note.text)
    data = command.getTag('x', namespace=Namespace.DATA)
    if data is None:
        return
    form = dataforms.extend_form(node=data)
    # FormGrid.__init__
    if form.title is not None:
        str(form.title)
    if form.instructions:
        str(form.instructions)
    if GajimFormGrid is not None:
        GajimFormGrid._analyse_fields(form, {})
    # _analyse_fields, mirrored
    label_lengths = {0}
    for field in form.iter_fields():
        if field.type_ == 'hidden':
            continue
        if field.label is None:
            continue
        label_lengths.add(len(field.label))
    # _parse_form, mirrored, with what each widget reads
    for field in form.iter_fields():
        if field.type_ == 'hidden':
            continue
        if field.var is not None and 'fallback' in field.var:
            pass
        if field.media:
            continue
        if field.type_ not in GAJIM_WIDGETS:
            raise KeyError('Gajim has no widget for field type %r' % field.type_)
        str(field.label)
        field.description
        if field.type_ == 'fixed':
            len(field.value)
        elif field.type_ == 'boolean':
            bool(field.value)
        elif field.type_ in ('list-single', 'jid-single', 'text-single', 'text-private'):
            str(field.value)
            if field.type_ == 'list-single':
                for value, label in field.iter_options():
                    str(value), str(label)
        elif field.type_ in ('list-multi', 'jid-multi'):
            list(field.values)
            if field.type_ == 'list-multi':
                list(field.options)
        elif field.type_ == 'text-multi':
            str(field.value)
        field.is_valid()
    if status == 'executing':
        form.is_valid()  # the Stage page's validate()


def poezio(raw):
    """What poezio 0.14 does with the answer, through slixmpp 1.8.3. Returns
    the lines it shows."""
    root = ET.fromstring(raw)
    command = root.find('{http://jabber.org/protocol/commands}command')
    status = command.get('status')
    notes = [n.text or '' for n in command.findall('{http://jabber.org/protocol/commands}note')]
    xform = command.find('{jabber:x:data}x')
    if xform is None:
        if status == 'executing':
            raise AssertionError('poezio cancels a stage without a data form')
        return notes
    wire = [f.get('var', '') for f in xform.findall('{jabber:x:data}field')]
    form = Form(xml=xform)
    for note in notes:
        form.add_field(type='fixed', label=note)
    fields = form.getFields()
    named = [v for v in wire if v]
    if len(set(named)) != len(named):
        raise AssertionError('fields share a var, and slixmpp keeps one: %r' % named)
    if wire.count('') > 0 and notes:
        raise AssertionError('a nameless field is replaced by poezio\'s field for the notes')
    shown = []
    for _name, field in fields.items():
        ftype = field['type']
        if ftype == 'hidden':
            continue
        label = field['label']
        field['desc']
        value = field.get_value()
        if ftype == 'fixed':
            label = value
            if isinstance(label, list):
                raise AssertionError('a fixed field with several values: poezio shows none of them')
        if ftype in ('list-single', 'list-multi'):
            for option in field.get_options():
                text = option['label']
                if not plain_label(text):
                    raise AssertionError('option label %r: poezio draws nothing' % text)
                if columns(text) > MAX_COLUMNS:
                    raise AssertionError('option label %r: poezio cuts it' % text)
        label = label or ''
        if columns(label) > MAX_COLUMNS:
            if ftype == 'fixed' and _name.startswith('text-'):
                raise AssertionError('line %r is %d columns: poezio cuts it at %d'
                                     % (label, columns(label), MAX_COLUMNS))
            CUT.add(label)
        shown.append(label)
    return shown


# Other text poezio cuts (parameter labels, confirmation questions): shown
# at the end, not failed.
CUT = set()


def main():
    load_slixmpp()
    paths = sorted(glob.glob(os.path.join(sys.argv[1], '*.xml')))
    if not paths:
        print('no forms in %s' % sys.argv[1])
        return 1
    failed = 0
    for path in paths:
        name = os.path.basename(path)
        with open(path, encoding='utf-8') as f:
            raw = f.read()
        for client, load in (('gajim', lambda: gajim(NodeBuilder(raw).getDom())),
                             ('poezio', lambda: poezio(raw))):
            try:
                load()
            except Exception as err:
                failed += 1
                detail = traceback.format_exc().strip().splitlines()
                print('FAIL %s: %s: %s: %s' % (name, client, type(err).__name__, err))
                print('    ' + '\n    '.join(detail[-4:]))
    for label in sorted(CUT):
        print('poezio cuts (not a result line): %r' % label)
    print('%d answers, %d failures (Gajim\'s own FormGrid: %s)'
          % (len(paths), failed, 'yes' if GajimFormGrid else 'not installed, mirrored'))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
