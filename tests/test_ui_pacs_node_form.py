"""Adding a PACS node: a mistake in the form is shown in it, and what was typed stays."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QWidget

from ui.qt.pacs_dialog import NodeForm


def tab_order(form: NodeForm) -> list[QWidget]:
    """The form's fields in the order Tab visits them, from Name."""
    fields = [form.name, form.aet, form.host, form.port, form.url, form.user, form.secret, form.bearer]
    order, widget = [form.name], form.name.nextInFocusChain()
    while widget is not form.name:
        if widget in fields and widget not in order:
            order.append(widget)
        widget = widget.nextInFocusChain()
    return order


def test_a_node_name_the_form_refuses_keeps_the_form_open_with_what_was_typed(qtbot) -> None:  # type: ignore[no-untyped-def]
    form = NodeForm()
    qtbot.addWidget(form)
    form.show()
    qtbot.waitExposed(form)
    assert tab_order(form) == [form.name, form.aet, form.host, form.port, form.url, form.user, form.secret, form.bearer]  # before: Host, then URL
    qtbot.keyClicks(form.name, "Local Orthanc")
    qtbot.keyClicks(form.aet, "ORTHANC")
    qtbot.keyClicks(form.host, "127.0.0.1")
    form.port.setValue(11112)
    ok = form.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)

    ok.click()
    assert form.isVisible() and form.result() != QDialog.DialogCode.Accepted  # before: closed, and everything typed was lost
    assert "'Local Orthanc' is not a node name" in form.error.text()
    assert form.error.height() >= form.error.heightForWidth(form.error.width())  # both lines of the reason in sight
    assert (form.aet.text(), form.host.text(), form.port.value()) == ("ORTHANC", "127.0.0.1", 11112)

    form.name.setText("local-orthanc")
    ok.click()
    assert form.result() == QDialog.DialogCode.Accepted and not form.isVisible()
    node, secret = form.node()
    assert (node.name, node.aet, node.host, node.port, secret) == ("local-orthanc", "ORTHANC", "127.0.0.1", 11112, "")
