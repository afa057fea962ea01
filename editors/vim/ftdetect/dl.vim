" .dl files are dlc's models (editors/README.md).
autocmd BufRead,BufNewFile *.dl setfiletype dl
