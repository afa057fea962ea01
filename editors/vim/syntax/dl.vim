" Vim syntax file for dl, the language of dlc (docs/language.md).
" Install: copy syntax/ and ftdetect/ into ~/.vim (editors/README.md).
" The keywords are grammar/lexer.l's, the built-ins src/builtins.c's:
" tests/install_test.sh checks that every one is here.
if exists("b:current_syntax")
  finish
endif

syn keyword dlKeyword fn deriv param loss
" `value` is the function's result inside a deriv line.
syn keyword dlSpecial value
syn keyword dlBuiltin sin cos tan exp log sqrt tanh sigmoid abs sign log1p expm1 atan relu softplus min max pow where
syn keyword dlBuiltin sum mean logsumexp softmax log_softmax argmax onehot transpose stack concat
syn keyword dlBuiltin len linspace zeros ones fill rand randn eye load_csv diff train print plot
syn keyword dlBuiltin sgd adam rmsprop
syn keyword dlConstant pi inf

syn match dlNumber "\<\d\+\(\.\d*\)\=\([eE][+-]\=\d\+\)\="
syn match dlNumber "\.\d\+\([eE][+-]\=\d\+\)\="
syn match dlOperator "[-+*/^<>=@']\|[<>=!]="

syn match dlComment "#.*$" contains=dlTodo,@Spell
syn keyword dlTodo contained TODO FIXME XXX NOTE

" A string's {EXPR} is an expression (strings nest inside it); {{ and }}
" are literal braces.
syn region dlString start=+"+ skip=+\\\\\|\\"+ end=+"+ oneline contains=dlEscape,dlBraceEscape,dlInterp,@Spell
syn match dlEscape contained +\\[nt"\\]+
syn match dlBraceEscape contained "{{\|}}"
syn region dlInterp contained matchgroup=dlInterpDelim start="{\ze[^{]" end="}" contains=TOP

hi def link dlKeyword Keyword
hi def link dlSpecial Identifier
hi def link dlBuiltin Function
hi def link dlConstant Constant
hi def link dlNumber Number
hi def link dlOperator Operator
hi def link dlComment Comment
hi def link dlTodo Todo
hi def link dlString String
hi def link dlEscape SpecialChar
hi def link dlBraceEscape SpecialChar
hi def link dlInterpDelim Delimiter

let b:current_syntax = "dl"
