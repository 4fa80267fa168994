"""English date formats the house style writes out ("February 28, 2026", not Django's
"Feb. 28, 2026"). Other languages use Django's own formats ("28 de febrero de 2026")."""

DATE_FORMAT = "F j, Y"
