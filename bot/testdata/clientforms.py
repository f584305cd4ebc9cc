#!/usr/bin/python3
"""Load the bot's ad-hoc answers the way real clients do, and fail loudly.

Usage: clientforms.py DIR

DIR holds one <iq/> per *.xml file, each the bot's answer to one
request of an ad-hoc command: a result carrying a <command
xmlns='http://jabber.org/protocol/commands'/>, or an error
(TestClientsShowEveryForm in bot/clientforms_test.go writes them). Each
is taken through:

  Gajim 1.7.3 (Debian 12), with python3-nbxmpp 4.2.2: nbxmpp's ad-hoc
  parsing (nbxmpp/modules/adhoc.py: status, notes, actions), then what
  gajim/gtk/adhoc.py does with the form (dataforms.extend_form) and what
  gajim/gtk/dataform.py's FormGrid does with it: _analyse_fields and
  _parse_form walk form_node.iter_fields() and read each field's type_,
  label, media, value, options; the Stage page validates with is_valid().
  When Gajim itself is installed, its own FormGrid._analyse_fields (a
  static method that needs no display) runs too. Gajim shows a fixed
  field's value (and a form's instructions) as Pango markup, through
  make_href_markup (gajim/gtk/util.py), unescaped: each must parse as
  markup and mean its own text, or Gajim shows the field's name instead,
  or styles what someone typed. Pango's parser checks that when
  gir1.2-pango-1.0 is installed, an XML parser (the same grammar) when
  not. An error answer must carry a text: Gajim's error page shows it
  (to_user_string), or only the condition's name.

  poezio 0.14, with python3-slixmpp 1.8.3: slixmpp's xep_0004 Form built
  from the <x/> (poezio's core/handlers.py next_adhoc_step), notes added
  as nameless fixed fields, then what windows/data_forms.py's FormWin
  reads: getFields(), each field's type, label, desc, value, options.
  poezio shows a field's label (a fixed field's value) in half of its
  window, which its vertical tab list (on by default) narrows by 20
  columns: on an 80-column terminal a text line wider than LINE_COLUMNS
  is cut, a choice wider than OPTION_COLUMNS runs over the arrows around
  it (and is drawn as nothing once wider than the field), and some
  characters (emoji) make a choice's label draw as nothing. It shows
  FORM_ROWS fields of a 24-line terminal, and scrolls only from one input
  field to the next: a longer form has lines nobody can read. Fixed
  fields and choices that would be cut, and forms too long, fail; cut
  parameter labels are listed. For an error answer, slixmpp finds the
  command it ends by the <command/>'s sessionid (poezio then says "An
  error occurred while executing the command: " and the text); the
  answer must name the command.

Any exception, and any of poezio's cut or lost lines, fails the file. The
script exits 1 if a file failed, naming it and the reason.
"""

import glob
import os
import re
import sys
import traceback
import unicodedata
import xml.etree.ElementTree as ET

from nbxmpp.errors import StanzaError
from nbxmpp.modules import dataforms
from nbxmpp.modules.adhoc import _parse_actions, _parse_notes
from nbxmpp.namespaces import Namespace
from nbxmpp.protocol import Protocol
from nbxmpp.simplexml import NodeBuilder
from slixmpp import Iq
from slixmpp.plugins.xep_0004.stanza import FieldOption, Form, FormField
from slixmpp.plugins.xep_0050.stanza import Command
from slixmpp.xmlstream import register_stanza_plugin

try:
    import gi

    gi.require_version('Gtk', '3.0')
    gi.require_version('GtkSource', '4')
    from gajim.gtk.dataform import FormGrid as GajimFormGrid
    from gajim.gtk.util import make_href_markup as gajim_href_markup
    from gajim.common import app as gajim_app

    class _Colours:  # Gajim reads its link colour from its theme
        def get_value(self, *_args):
            return 'rgb(42, 118, 198)'

    gajim_app.css_config = _Colours()
except Exception:  # Gajim is not needed: the mirror below is what runs in CI
    GajimFormGrid = None
    gajim_href_markup = None

try:
    import gi

    gi.require_version('Pango', '1.0')
    from gi.repository import Pango
except Exception:  # gir1.2-pango-1.0: the XML check below stands in
    Pango = None

# gajim/common/helpers.py's URL_REGEX, for make_href_markup without Gajim.
URL_REGEX = re.compile(
    r"(www\.(?!\.)|[a-z][a-z0-9+.-]*://)[^\s<>'\"]+[^!,\.\s<>\)'\"\]]")
LINK = re.compile(r'<a href="[^"]*">|</a>')

# poezio gives a field's label half of the window less its vertical tab
# list (20 columns): on an 80-column terminal that is 30 columns, and the
# last one is not written. A list's choice is drawn centred in the 30
# columns after the label, between an arrow in the first column and one in
# the last.
FIELD_COLUMNS = (80 - 20) // 2
LINE_COLUMNS = FIELD_COLUMNS - 1
OPTION_COLUMNS = FIELD_COLUMNS - 2
# poezio's form window is the terminal less its title line, two help
# lines and the tab bar: 20 rows of 24, one field each.
FORM_ROWS = 24 - 4

# The field types gajim/gtk/dataform.py's FormGrid has a widget for; any
# other type is a KeyError there.
GAJIM_WIDGETS = {'boolean', 'fixed', 'list-single', 'list-multi', 'jid-single',
                 'jid-multi', 'text-single', 'text-private', 'text-multi'}


def load_slixmpp():
    """What slixmpp's xep_0004 plugin does when poezio loads it
    (XEP_0004.plugin_init): without it a Form has no fields."""
    register_stanza_plugin(FormField, FieldOption, iterable=True)
    register_stanza_plugin(Form, FormField, iterable=True)
    register_stanza_plugin(Iq, Command)


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


def href_markup(text):
    """gajim/gtk/util.py's make_href_markup: links in text wrapped in
    <a href=...><span foreground=...>, the rest left as it is."""
    if gajim_href_markup is not None:
        return gajim_href_markup(text)

    def to_href(match):
        url = match.group()
        if '://' not in url:
            url = 'https://' + url
        return '<a href="%s"><span foreground="#2a76c6">%s</span></a>' % (url, match.group())
    return URL_REGEX.sub(to_href, text)


def check_markup(text, what):
    """Gajim's Gtk.Label.set_markup(make_href_markup(text)): GTK takes the
    <a> links out and Pango parses the rest. It must parse, and say text:
    else Gajim shows the field's name, or styles it."""
    markup = LINK.sub('', href_markup(text))
    if Pango is not None:
        try:
            shown = Pango.parse_markup(markup, -1, '\0').text
        except Exception as err:
            raise AssertionError('%s %r is not Pango markup, Gajim shows no text: %s' % (what, text, err))
    else:
        try:
            root = ET.fromstring('<markup>%s</markup>' % markup)
        except ET.ParseError as err:
            raise AssertionError('%s %r is not Pango markup, Gajim shows no text: %s' % (what, text, err))
        for child in root:
            if child.tag != 'span':
                raise AssertionError('%s %r holds markup <%s>' % (what, text, child.tag))
        shown = ''.join(root.itertext())
    if shown != text:
        raise AssertionError('%s %r: Gajim shows %r' % (what, text, shown))


def gajim(iq):
    """What Gajim 1.7.3 does with the answer, through nbxmpp 4.2.2."""
    if iq.getAttr('type') == 'error':
        # nbxmpp raises StanzaError; Gajim's error page shows
        # to_user_string(error): the text, or else the condition's name.
        error = StanzaError(Protocol(node=iq))
        assert error.condition, 'an error without a condition'
        if not error.get_text('en-US'):
            raise AssertionError('error %s without a text: Gajim shows only its name' % error.condition)
        return
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
        check_markup(form.instructions, 'instructions')
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
            check_markup(field.value, 'text line')
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
    if root.get('type') == 'error':
        iq = Iq(xml=root)
        # XEP_0050._handle_command_result: the session is found by the
        # answer's sessionid, or by the request's id while the command has
        # none yet; then poezio's adhoc_error shows the text.
        if command is None or not command.get('node'):
            raise AssertionError('an error that names no command: slixmpp finds no session for it')
        if iq['command']['status'] == 'completed':
            raise AssertionError('an error with status completed: slixmpp ends the session twice')
        if not iq['error']['text']:
            raise AssertionError('error %s without a text: poezio shows only its name' % iq['error']['condition'])
        return ['An error occurred while executing the command: ' + iq['error']['text']]
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
    if len([f for f in fields.values() if f['type'] != 'hidden']) > FORM_ROWS:
        raise AssertionError('%d fields: poezio shows %d and cannot scroll to the rest'
                             % (len(fields), FORM_ROWS))
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
                if columns(text) > OPTION_COLUMNS:
                    raise AssertionError('option label %r is %d columns: poezio draws it over its arrows, '
                                         'or as nothing past %d' % (text, columns(text), FIELD_COLUMNS))
        label = label or ''
        if columns(label) > LINE_COLUMNS:
            if ftype == 'fixed':
                raise AssertionError('line %r is %d columns: poezio cuts it at %d'
                                     % (label, columns(label), LINE_COLUMNS))
            CUT.add(label)
        shown.append(label)
    return shown


# Other text poezio cuts (parameter labels): shown at the end, not failed.
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
        print('poezio cuts (a field\'s label): %r' % label)
    print('%d answers, %d failures (Gajim\'s own FormGrid: %s)'
          % (len(paths), failed, 'yes' if GajimFormGrid else 'not installed, mirrored'))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
